// Settings: the store's variables, fixed secrets turned into generated
// ones, and the form fields it describes.

package lxcfit

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/proximity-ve/proximity/internal/catalog"
)

// fixedSecrets replaces each password the store's file fixes (the same
// for every install) by a secret generated on the node. Variables that
// share a value keep sharing it, and a connection URL that embeds it
// follows.
func (f *fitter) fixedSecrets(svcs map[string]any, names []string) {
	type use struct{ service, key string }
	byValue := map[string][]use{}
	var order []string
	for _, name := range names {
		env, _ := svcs[name].(map[string]any)["environment"].(map[string]any)
		for _, k := range sortedKeys(env) {
			v, isStr := env[k].(string)
			if !isStr {
				if env[k] == nil {
					continue
				}
				v = str(env[k])
			}
			if !catalog.SecretName(strings.ToUpper(k)) || v == "" || strings.Contains(v, "$") {
				continue
			}
			if byValue[v] == nil {
				order = append(order, v)
			}
			byValue[v] = append(byValue[v], use{name, k})
		}
	}
	for _, v := range order {
		uses := byValue[v]
		varName := f.freeName(strings.ToUpper(uses[0].key))
		ref := "${" + varName + "}"
		var where []string
		for _, u := range uses {
			svcs[u.service].(map[string]any)["environment"].(map[string]any)[u.key] = ref
			where = append(where, u.service+"."+u.key)
		}
		for _, name := range names {
			env, _ := svcs[name].(map[string]any)["environment"].(map[string]any)
			for _, k := range sortedKeys(env) {
				if s, ok := env[k].(string); ok && s != ref && strings.Contains(s, "://") && strings.Contains(s, v) {
					env[k] = strings.ReplaceAll(s, v, ref)
					where = append(where, name+"."+k)
				}
			}
		}
		f.env = append(f.env, catalog.EnvVar{Name: varName, Generate: 32})
		f.degrade("services."+uses[0].service+".environment."+uses[0].key, "the store fixes this password for every install; %s is generated on the node instead (%s)", varName, strings.Join(where, ", "))
	}
}

var nonNameRE = regexp.MustCompile(`[^A-Z0-9_]+`)

// freeName makes an unused variable name of s.
func (f *fitter) freeName(s string) string {
	s = nonNameRE.ReplaceAllString(s, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "V_" + s
	}
	base := s
	for i := 2; f.taken(s); i++ {
		s = fmt.Sprintf("%s_%d", base, i)
	}
	return s
}

func (f *fitter) taken(name string) bool {
	for _, e := range f.env {
		if e.Name == name {
			return true
		}
	}
	for _, s := range f.settings {
		if s.Name == name {
			return true
		}
	}
	for _, s := range f.app.Settings {
		if s.Name == name {
			return true
		}
	}
	return false
}

// describedSettings turns the environment variables the store describes
// into settings, their fixed value the default.
func (f *fitter) describedSettings(svcs map[string]any, names []string) {
	if len(f.app.Described) == 0 {
		return
	}
	for _, name := range names {
		env, _ := svcs[name].(map[string]any)["environment"].(map[string]any)
		for _, k := range sortedKeys(env) {
			label, ok := f.app.Described[k]
			if !ok || !catalog.VariableName(k) || f.taken(k) {
				continue
			}
			v := str(env[k])
			if strings.Contains(v, "$") {
				continue
			}
			s := catalog.Setting{Name: k, Type: inferType(v), Label: label, Default: v}
			if catalog.SecretName(k) {
				continue // fixedSecrets has made it a generated secret
			}
			if fixed, ok := f.checkSetting(s); ok {
				env[k] = "${" + k + "}"
				f.settings = append(f.settings, fixed)
			}
		}
	}
}

var intRE = regexp.MustCompile(`^-?[0-9]{1,18}$`)

func inferType(v string) string {
	switch {
	case v == "true" || v == "false":
		return catalog.TypeBool
	case intRE.MatchString(v):
		return catalog.TypeInt
	}
	return catalog.TypeString
}

// checkSetting validates one setting on its own; a default or a pattern
// that breaks the catalog's rules is dropped (and reported), anything else
// that breaks them leaves it out.
func (f *fitter) checkSetting(s catalog.Setting) (catalog.Setting, bool) {
	probe := func(s catalog.Setting) error {
		e := catalog.Entry{ID: "probe", Name: "probe", Version: "1", Description: "probe", Category: "probe",
			Resources: catalog.Resources{Cores: 1, MemoryMB: 512, DiskGB: 1}, Template: Template,
			Ports:       []catalog.Port{{Name: "web", Internal: 80, Protocol: "tcp", HTTP: true}},
			Settings:    []catalog.Setting{s},
			Compose:     "services:\n  a:\n    image: a:1\n    ports: [\"80:80\"]\n",
			HealthCheck: catalog.HealthCheck{Port: "web", Path: "/", TimeoutSec: 1}}
		return e.Validate("probe")
	}
	if probe(s) == nil {
		return s, true
	}
	if s.Default != "" {
		t := s
		t.Default = ""
		if probe(t) == nil {
			f.degrade("settings."+s.Name+".default", "the default %q breaks the setting's own rules and is dropped", s.Default)
			return t, true
		}
	}
	if s.Pattern != "" {
		t := s
		t.Pattern, t.Default = "", ""
		if probe(t) == nil {
			f.degrade("settings."+s.Name+".pattern", "the pattern is not RE2 syntax and is dropped")
			return t, true
		}
	}
	return s, false
}

// wellKnown are variables the stores fill in themselves.
var wellKnown = map[string]catalog.Setting{
	"TZ":   {Name: "TZ", Type: catalog.TypeString, Label: "Time zone", Description: "The app's time zone, e.g. Europe/Paris.", Default: "Etc/UTC"},
	"PUID": {Name: "PUID", Type: catalog.TypeInt, Label: "User id", Description: "The user id the app's files belong to.", Default: "1000", Min: ptr(0), Max: ptr(65535)},
	"PGID": {Name: "PGID", Type: catalog.TypeInt, Label: "Group id", Description: "The group id the app's files belong to.", Default: "1000", Min: ptr(0), Max: ptr(65535)},
}

func ptr(n int64) *int64 { return &n }

// declareVariables declares every variable the Compose document still
// refers to: the store's form fields, the well-known ones, and any other
// as a setting (a secret, generated, when its name says it is one).
func (f *fitter) declareVariables(compose string) {
	declared := map[string]catalog.Setting{}
	for _, s := range f.app.Settings {
		declared[s.Name] = s
	}
	for _, name := range referenced(compose) {
		if f.taken(name) && !declaredIn(f.app.Settings, name) {
			continue
		}
		if s, ok := declared[name]; ok {
			if fixed, ok := f.checkSetting(s); ok {
				f.settings = append(f.settings, fixed)
			} else {
				f.reject("form_fields."+name, "the form field breaks the catalog's rules for settings")
			}
			continue
		}
		if s, ok := wellKnown[name]; ok {
			f.settings = append(f.settings, s)
			continue
		}
		s := catalog.Setting{Name: name, Type: catalog.TypeString, Label: name}
		if catalog.SecretName(name) {
			s = catalog.Setting{Name: name, Type: catalog.TypeSecret, Label: name, Generate: 32}
		}
		f.settings = append(f.settings, s)
	}
}

func declaredIn(list []catalog.Setting, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}
