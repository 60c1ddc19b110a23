// Package lxcfit turns an app of another platform's store (a Compose
// document and the store's metadata, read by an importer such as
// internal/catalog/casaos or internal/catalog/runtipi) into a catalog
// entry that runs in Proximity's unprivileged LXC container: one app per
// container, its own Docker daemon, its data under
// /opt/proximity/data/<id>.
//
// What cannot run there rejects the entry; what can run in a lesser form
// is changed and reported (a degradation). Nothing is changed silently:
// every rejection and degradation is a catalog.Problem with the file, the
// field and the reason. The rules are documented in docs/catalog.md
// ("Importing CasaOS and Runtipi stores").
package lxcfit

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/internal/catalog"
)

const (
	// DataRoot holds every app's data inside its container.
	DataRoot = "/opt/proximity/data"
	// Template is the container template of imported apps: the one the
	// builtin entries use.
	Template = "debian-13-standard_13.6-1_amd64.tar.zst"
	// MaxFileSize bounds a store file an importer reads.
	MaxFileSize = 1 << 20
)

// App is an app of a store, as an importer read it.
type App struct {
	// File is the Compose document's file; MetaFile, if the store keeps
	// the app's metadata apart, is that file.
	ID, File, MetaFile string
	Name               string
	Description        string
	Category           string
	Tags               []string
	Icon               string
	Website            string
	// Version is the store's version of the app; "" takes the tag of the
	// main service's image.
	Version string
	// Doc is the Compose document with the store's variables already
	// replaced (Subst) and the store's extensions removed.
	Doc map[string]any
	// Main is the service with the web interface.
	Main string
	// MainPort is the port the main service publishes for its web
	// interface; 0 takes the first TCP port it publishes. When the main
	// service does not publish it and MainTarget is set, it is published
	// as MainPort:MainTarget.
	MainPort, MainTarget int
	// Scheme is the web interface's scheme: "", http or https.
	Scheme string
	// HealthPath is the path the web interface answers at ("" is /).
	HealthPath string
	// HostPorts are the ports ("port/proto") a service in network_mode
	// host listens on, as the store describes them.
	HostPorts map[string][]string
	// Settings are the store's form fields.
	Settings []catalog.Setting
	// Described are settings made of the environment variables the store
	// describes (name → label); their fixed values become defaults.
	Described map[string]string
	// Mounts are the store's own host folders, before the generic rules.
	Mounts []Mount
	// Architectures the store builds for; empty means all.
	Architectures []string
}

// Mount maps a host folder of the store (Prefix) to Sub, a folder under
// the app's data directory. Reason, when set, reports the mapping as a
// degradation.
type Mount struct {
	Prefix, Sub, Reason string
}

// DataDir is where the app id keeps its data inside its container.
func DataDir(id string) string { return DataRoot + "/" + id }

type fitter struct {
	app      App
	problems []catalog.Problem
	rejected bool
	env      []catalog.EnvVar
	settings []catalog.Setting
}

func (f *fitter) degrade(field, format string, args ...any) {
	f.problems = append(f.problems, catalog.Problem{ID: f.app.ID, File: f.file(field), Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (f *fitter) reject(field, format string, args ...any) {
	f.rejected = true
	f.problems = append(f.problems, catalog.Problem{ID: f.app.ID, File: f.file(field), Field: field, Reason: fmt.Sprintf(format, args...), Rejected: true})
}

// file is the file a problem with field is in: the Compose document's
// fields are in File, the store's metadata in MetaFile (when the store
// keeps it apart).
func (f *fitter) file(field string) string {
	if f.app.MetaFile == "" {
		return f.app.File
	}
	for _, p := range []string{"services", "networks", "volumes", "configs", "secrets", "port"} {
		if field == p || strings.HasPrefix(field, p+".") {
			return f.app.File
		}
	}
	return f.app.MetaFile
}

// Fit makes the catalog entry of app. It returns the entry and whether it
// was kept, with every rejection and degradation; a kept entry passes
// catalog.Entry.Validate.
func Fit(app App) (catalog.Entry, []catalog.Problem, bool) {
	f := &fitter{app: app}
	e := f.fit()
	if f.rejected {
		return catalog.Entry{}, f.problems, false
	}
	if err := e.Validate(app.File); err != nil {
		for _, one := range splitErrors(err) {
			field, reason := "(entry)", one.Error()
			if ce, ok := one.(*catalog.Error); ok {
				field, reason = ce.Field, ce.Msg
			}
			f.reject(field, "%s", reason)
		}
		return catalog.Entry{}, f.problems, false
	}
	return e, f.problems, true
}

func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (f *fitter) fit() catalog.Entry {
	a := f.app
	if len(a.Architectures) > 0 && !contains(a.Architectures, "amd64") {
		f.reject("architectures", "no amd64 build (%s): Proximity's containers are amd64", strings.Join(a.Architectures, ", "))
	}
	svcs, ok := a.Doc["services"].(map[string]any)
	if !ok || len(svcs) == 0 {
		f.reject("services", "no services")
		return catalog.Entry{}
	}
	if _, ok := svcs[a.Main].(map[string]any); !ok {
		f.reject("services", "no main service %q", a.Main)
		return catalog.Entry{}
	}
	f.topLevel()
	names := sortedKeys(svcs)
	for _, name := range names {
		svc, ok := svcs[name].(map[string]any)
		if !ok {
			f.reject("services."+name, "not a service definition")
			continue
		}
		f.service(name, svc)
	}
	if f.rejected {
		return catalog.Entry{}
	}
	f.fixedSecrets(svcs, names)
	f.describedSettings(svcs, names)
	ports, health := f.ports(svcs, names)
	if f.rejected {
		return catalog.Entry{}
	}
	out, err := yaml.Marshal(a.Doc)
	if err != nil {
		f.reject("compose", "cannot write the Compose document: %v", err)
		return catalog.Entry{}
	}
	compose := string(out)
	f.declareVariables(compose)
	for _, u := range []struct {
		field string
		v     *string
	}{{"icon", &a.Icon}, {"website", &a.Website}} {
		if *u.v != "" && !catalog.ValidHTTPS(*u.v) {
			f.degrade(u.field, "%q is not an https:// URL; the entry has no %s", *u.v, u.field)
			*u.v = ""
		}
	}
	version := a.Version
	if version == "" {
		version = imageVersion(str(svcs[a.Main].(map[string]any)["image"]))
	}
	e := catalog.Entry{
		ID:          a.ID,
		Name:        a.Name,
		Version:     version,
		Description: a.Description,
		Category:    a.Category,
		Tags:        a.Tags,
		Icon:        a.Icon,
		Website:     a.Website,
		Resources:   f.resources(svcs, names),
		Template:    Template,
		Ports:       ports,
		Environment: f.env,
		Settings:    f.settings,
		Compose:     compose,
		HealthCheck: health,
	}
	e.File = a.File
	if a.MetaFile != "" {
		e.File = a.MetaFile
	}
	if strings.Contains(compose, DataDir(a.ID)) {
		e.Volumes = []string{DataDir(a.ID)}
	}
	return e
}

// topLevel keeps services, networks and volumes of the document: the
// store's own networks that exist outside the document go.
func (f *fitter) topLevel() {
	for k := range f.app.Doc {
		switch k {
		case "services", "networks", "volumes":
		case "configs", "secrets":
			f.reject(k, "top-level %s refer to files outside the Compose document", k)
		default:
			delete(f.app.Doc, k) // name, version and the stores' x- extensions
		}
	}
	nets, _ := f.app.Doc["networks"].(map[string]any)
	for _, n := range sortedKeys(nets) {
		def, _ := nets[n].(map[string]any)
		if ext, _ := def["external"].(bool); ext {
			delete(nets, n)
			f.degrade("networks."+n, "the external network %s belongs to the store's platform; the services share the app's own network instead", n)
			f.removeNetwork(n)
		}
	}
	if nets != nil && len(nets) == 0 {
		delete(f.app.Doc, "networks")
	}
}

func (f *fitter) removeNetwork(n string) {
	svcs, _ := f.app.Doc["services"].(map[string]any)
	for _, v := range svcs {
		svc, _ := v.(map[string]any)
		switch t := svc["networks"].(type) {
		case []any:
			var keep []any
			for _, x := range t {
				if str(x) != n {
					keep = append(keep, x)
				}
			}
			if len(keep) == 0 {
				delete(svc, "networks")
			} else {
				svc["networks"] = keep
			}
		case map[string]any:
			delete(t, n)
			if len(t) == 0 {
				delete(svc, "networks")
			}
		}
	}
}

func (f *fitter) service(name string, svc map[string]any) {
	field := "services." + name
	for k := range svc {
		if strings.HasPrefix(k, "x-") {
			delete(svc, k)
		}
	}
	if _, ok := svc["build"]; ok {
		f.reject(field+".build", "builds an image from sources the store does not ship; only published images are imported")
	}
	if b, _ := svc["privileged"].(bool); b {
		f.reject(field+".privileged", "a privileged container cannot run in an unprivileged LXC container")
	}
	if _, ok := svc["env_file"]; ok {
		f.reject(field+".env_file", "refers to a file outside the Compose document")
	}
	image := withDefaults(str(svc["image"]))
	if reason := unpinned(image); reason != "" {
		f.reject(field+".image", "%s", reason)
	} else {
		svc["image"] = image
	}
	f.devices(field, svc)
	f.capabilities(field, svc)
	f.securityOpt(field, svc)
	f.network(name, svc)
	f.labels(field, svc)
	f.volumes(field, svc)
	if rt := str(svc["runtime"]); rt != "" {
		delete(svc, "runtime")
		f.degrade(field+".runtime", "the %s runtime (a GPU) is not available in the container: the service runs on the CPU", rt)
	}
	if env, ok := svc["environment"].([]any); ok {
		m := map[string]any{}
		for _, x := range env {
			k, v, found := strings.Cut(str(x), "=")
			if found {
				m[k] = v
			} else {
				m[k] = nil
			}
		}
		svc["environment"] = m
	}
}

// resources sums the services' memory and CPU limits (else reservations)
// and adds room for the container's own system.
func (f *fitter) resources(svcs map[string]any, names []string) catalog.Resources {
	var memMB, cpus float64
	for _, name := range names {
		deploy, _ := svcs[name].(map[string]any)["deploy"].(map[string]any)
		res, _ := deploy["resources"].(map[string]any)
		lim, _ := res["limits"].(map[string]any)
		resv, _ := res["reservations"].(map[string]any)
		m := memBytes(str(lim["memory"]))
		if m == 0 {
			m = memBytes(str(resv["memory"]))
		}
		if m == 0 {
			m = memBytes(str(svcs[name].(map[string]any)["mem_limit"]))
		}
		memMB += float64(m) / (1 << 20)
		c, _ := strconv.ParseFloat(str(lim["cpus"]), 64)
		if c > 0 && c < 1e6 {
			cpus += c
		}
	}
	r := catalog.Resources{Cores: 1, MemoryMB: 1024, DiskGB: 8}
	if len(names) > 1 {
		r = catalog.Resources{Cores: 2, MemoryMB: 2048, DiskGB: 16}
	}
	if need := int(math.Ceil((memMB+512)/128)) * 128; memMB > 0 && need > r.MemoryMB {
		r.MemoryMB = min(need, 262144)
	}
	if c := int(math.Ceil(cpus)); c > r.Cores {
		r.Cores = min(c, 64)
	}
	return r
}

var memRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?$`)

// memBytes reads a Compose memory size ("512M", "1g", "1.5GB", bytes).
func memBytes(s string) int64 {
	m := memRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m[2]]
	v := n * mult
	if v > 1<<50 {
		return 1 << 50
	}
	return int64(v)
}

func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return strconv.FormatInt(int64(t), 10)
		}
		return strconv.FormatFloat(t, 'f', -1, 64)
	case map[string]any, []any:
		return ""
	}
	return fmt.Sprint(v)
}

// Str is the text of a scalar of a decoded document ("" for a map or a
// list): what the importers read store fields with.
func Str(v any) string { return str(v) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
