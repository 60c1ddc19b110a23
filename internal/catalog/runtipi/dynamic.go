package runtipi

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/lxcfit"
)

// dynamicKeys maps the keys of a dynamic compose service to Compose's;
// the ones not listed need more than a rename.
var dynamicKeys = map[string]string{
	"image": "image", "command": "command", "entrypoint": "entrypoint", "networkMode": "network_mode",
	"extraHosts": "extra_hosts", "ulimits": "ulimits", "capAdd": "cap_add", "capDrop": "cap_drop",
	"hostname": "hostname", "devices": "devices", "pid": "pid", "privileged": "privileged", "tty": "tty",
	"user": "user", "workingDir": "working_dir", "shmSize": "shm_size", "logging": "logging",
	"readOnly": "read_only", "securityOpt": "security_opt", "stopSignal": "stop_signal",
	"stopGracePeriod": "stop_grace_period", "stdinOpen": "stdin_open", "extraLabels": "labels",
	"sysctls": "sysctls", "dns": "dns",
}

// fromDynamic turns docker-compose.json into a Compose document: the main
// service (isMain) and the port its web interface listens on
// (internalPort).
func fromDynamic(data []byte, degrade func(field, format string, args ...any)) (map[string]any, string, int, error) {
	var raw any
	if err := decodeJSON(data, &raw); err != nil {
		return nil, "", 0, fmt.Errorf("not JSON: %v", err)
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, "", 0, fmt.Errorf("not a dynamic compose document")
	}
	list, ok := top["services"].([]any)
	if !ok || len(list) == 0 {
		return nil, "", 0, fmt.Errorf("no services")
	}
	overrides := map[string]map[string]any{}
	ovs, _ := top["overrides"].([]any)
	for _, o := range ovs {
		om, _ := o.(map[string]any)
		if arch := lxcfit.Str(om["architecture"]); arch != "" && arch != "amd64" {
			continue
		}
		osvcs, _ := om["services"].([]any)
		for _, s := range osvcs {
			sm, _ := s.(map[string]any)
			if n := lxcfit.Str(sm["name"]); n != "" {
				overrides[n] = sm
			}
		}
	}
	svcs := map[string]any{}
	main, target := "", 0
	for i, s := range list {
		in, ok := s.(map[string]any)
		if !ok {
			return nil, "", 0, fmt.Errorf("services[%d] is not a service", i)
		}
		name := lxcfit.Str(in["name"])
		if !serviceNameRE.MatchString(name) {
			return nil, "", 0, fmt.Errorf("services[%d]: %q is not a service name", i, name)
		}
		if _, dup := svcs[name]; dup {
			return nil, "", 0, fmt.Errorf("services[%d]: %q is named twice", i, name)
		}
		for k, v := range overrides[name] {
			in[k] = v
		}
		out, err := dynamicService(in)
		if err != nil {
			return nil, "", 0, fmt.Errorf("services[%d] (%s): %v", i, name, err)
		}
		if b, _ := in["addToMainNetwork"].(bool); b {
			degrade("services."+name+".addToMainNetwork", "Runtipi's network shared between apps does not exist: the service is on the app's own network")
		}
		svcs[name] = out
		isMain, _ := in["isMain"].(bool)
		if isMain && main == "" {
			main = name
			if in["internalPort"] != nil {
				n, ok := portNumber(in["internalPort"])
				if !ok {
					return nil, "", 0, fmt.Errorf("services[%d] (%s): internalPort %v is not a port", i, name, in["internalPort"])
				}
				target = n
			}
		}
	}
	if main == "" && len(svcs) == 1 {
		for n := range svcs {
			main = n
		}
		n, _ := portNumber(list[0].(map[string]any)["internalPort"])
		target = n
	}
	return map[string]any{"services": svcs}, main, target, nil
}

var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

func dynamicService(in map[string]any) (map[string]any, error) {
	out := map[string]any{"restart": "unless-stopped"}
	for k, v := range in {
		if ck, ok := dynamicKeys[k]; ok {
			out[ck] = v
		}
	}
	switch env := in["environment"].(type) {
	case nil:
	case map[string]any:
		m := map[string]any{}
		for k, v := range env {
			m[k] = lxcfit.Str(v)
		}
		out["environment"] = m
	case []any:
		m := map[string]any{}
		for i, e := range env {
			kv, _ := e.(map[string]any)
			k := lxcfit.Str(kv["key"])
			if k == "" {
				return nil, fmt.Errorf("environment[%d] has no key", i)
			}
			m[k] = lxcfit.Str(kv["value"])
		}
		out["environment"] = m
	default:
		return nil, fmt.Errorf("environment is neither a map nor a list")
	}
	if vols, ok := in["volumes"].([]any); ok {
		var list []any
		for i, v := range vols {
			vm, _ := v.(map[string]any)
			host, ctr := lxcfit.Str(vm["hostPath"]), lxcfit.Str(vm["containerPath"])
			if host == "" || ctr == "" || strings.Contains(host+ctr, ":") && !strings.Contains(host+ctr, "${") {
				return nil, fmt.Errorf("volumes[%d] needs hostPath and containerPath", i)
			}
			if !strings.HasPrefix(ctr, "/") {
				ctr = "/" + ctr
			}
			s := host + ":" + ctr
			if ro, _ := vm["readOnly"].(bool); ro {
				s += ":ro"
			}
			list = append(list, s)
		}
		out["volumes"] = list
	}
	if ports, ok := in["addPorts"].([]any); ok {
		var list []any
		for i, p := range ports {
			pm, _ := p.(map[string]any)
			host, ctr := lxcfit.Str(pm["hostPort"]), lxcfit.Str(pm["containerPort"])
			if host == "" || ctr == "" {
				return nil, fmt.Errorf("addPorts[%d] needs hostPort and containerPort", i)
			}
			udp, _ := pm["udp"].(bool)
			tcp, _ := pm["tcp"].(bool)
			if tcp || !udp {
				list = append(list, host+":"+ctr+"/tcp")
			}
			if udp {
				list = append(list, host+":"+ctr+"/udp")
			}
		}
		out["ports"] = list
	}
	if hc, ok := in["healthCheck"].(map[string]any); ok {
		m := map[string]any{}
		for k, ck := range map[string]string{"test": "test", "interval": "interval", "timeout": "timeout",
			"retries": "retries", "startPeriod": "start_period", "startInterval": "start_interval"} {
			if v, ok := hc[k]; ok {
				m[ck] = v
			}
		}
		out["healthcheck"] = m
	}
	switch d := in["dependsOn"].(type) {
	case string:
		out["depends_on"] = []any{d}
	case []any, map[string]any:
		out["depends_on"] = d
	}
	if dep, ok := in["deploy"].(map[string]any); ok {
		out["deploy"] = renameKeys(dep, map[string]string{"deviceIds": "device_ids"})
	}
	return out, nil
}

func renameKeys(v any, names map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range t {
			if n, ok := names[k]; ok {
				k = n
			}
			m[k] = renameKeys(e, names)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = renameKeys(e, names)
		}
		return out
	}
	return v
}

var envNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

var secretNameRE = regexp.MustCompile(`PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY$|_KEY_`)

// formSettings makes settings of the form fields. A field whose variable
// is not one the catalog can name rejects the app (bad); what the
// catalog's settings cannot say is dropped and reported.
func formSettings(fields []FormField, degrade func(field, format string, args ...any)) ([]catalog.Setting, *catalog.Problem) {
	var out []catalog.Setting
	seen := map[string]bool{}
	for i, ff := range fields {
		f := fmt.Sprintf("form_fields[%d]", i)
		name := ff.EnvVariable
		if !envNameRE.MatchString(name) {
			return nil, &catalog.Problem{Field: f + ".env_variable", Reason: fmt.Sprintf("%q is not an upper-case variable name", name), Rejected: true}
		}
		if seen[name] {
			degrade(f, "%s is asked for twice; the first field is kept", name)
			continue
		}
		seen[name] = true
		label := strings.TrimSpace(ff.Label)
		if label == "" {
			label = name
		}
		s := catalog.Setting{Name: name, Label: label, Description: strings.TrimSpace(ff.Hint), Required: ff.Required}
		def := defaultText(ff.Default)
		var lo, hi *int64
		if ff.Min != nil && !math.IsNaN(*ff.Min) && math.Abs(*ff.Min) < 1e15 {
			lo = ptr(int64(*ff.Min))
		}
		if ff.Max != nil && !math.IsNaN(*ff.Max) && math.Abs(*ff.Max) < 1e15 {
			hi = ptr(int64(*ff.Max))
		}
		switch ff.Type {
		case "random":
			n := 32
			if lo != nil {
				n = int(*lo)
			}
			if n < 16 || n > 128 {
				degrade(f+".min", "a generated secret of %d characters is outside 16-128; it has %d", n, min(max(n, 16), 128))
				n = min(max(n, 16), 128)
			}
			if ff.Encoding != "" {
				degrade(f+".encoding", "the secret is generated as base32 letters and digits, not %s", ff.Encoding)
			}
			s.Type, s.Generate, s.Required = catalog.TypeSecret, n, false
			out = append(out, s)
			continue
		case "password":
			s.Type, s.Min, s.Max, s.Pattern = catalog.TypeSecret, lo, hi, ff.Regex
		case "number":
			s.Type, s.Min, s.Max, s.Default = catalog.TypeInt, lo, hi, def
		case "boolean":
			s.Type, s.Default = catalog.TypeBool, def
		case "email":
			s.Type, s.Default, s.Pattern = catalog.TypeEmail, def, ff.Regex
		case "url":
			s.Type, s.Default, s.Pattern = catalog.TypeURL, def, ff.Regex
		case "text", "fqdn", "ip", "fqdnip", "":
			s.Type, s.Min, s.Max, s.Default, s.Pattern = catalog.TypeString, lo, hi, def, ff.Regex
		default:
			degrade(f+".type", "the field type %q is read as text", ff.Type)
			s.Type, s.Default, s.Pattern = catalog.TypeString, def, ff.Regex
		}
		if len(ff.Options) > 0 {
			s.Type, s.Min, s.Max, s.Pattern = catalog.TypeEnum, nil, nil, ""
			for _, o := range ff.Options {
				if o.Value != "" && !containsString(s.Options, o.Value) {
					s.Options = append(s.Options, o.Value)
				}
			}
		}
		if s.Type != catalog.TypeSecret && secretNameRE.MatchString(name) {
			if s.Default != "" {
				degrade(f+".default", "%s holds a secret: it has no default, it is asked for", name)
			}
			s.Type, s.Default, s.Options = catalog.TypeSecret, "", nil
		}
		if s.Type == catalog.TypeSecret && def != "" && ff.Type == "password" {
			degrade(f+".default", "a password has no default: it is asked for")
		}
		out = append(out, s)
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ptr(n int64) *int64 { return &n }

// defaultText is a default of any JSON type as the text a .env file holds.
func defaultText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return lxcfit.Str(t)
	}
	return ""
}
