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
	"net/url"
	"path"
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
		if *u.v != "" && !validHTTPS(*u.v) {
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

// safeCaps are the capabilities a service may add: Docker's default set,
// which every container already holds, so adding one changes nothing and
// it works in an unprivileged LXC container.
var safeCaps = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true,
	"KILL": true, "MKNOD": true, "NET_BIND_SERVICE": true, "NET_RAW": true, "SETFCAP": true,
	"SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

// SafeCapabilities lists the capabilities an imported service may add.
func SafeCapabilities() []string { return sortedKeys(safeCaps) }

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

func (f *fitter) devices(field string, svc map[string]any) {
	devs, _ := svc["devices"].([]any)
	var keep []any
	for _, d := range devs {
		src, _, _ := strings.Cut(str(d), ":")
		if m, ok := d.(map[string]any); ok {
			src = str(m["source"])
		}
		if strings.HasPrefix(src, "/dev/dri") {
			f.degrade(field+".devices", "the GPU %s is not passed to an unprivileged container: no hardware acceleration", src)
			continue
		}
		f.reject(field+".devices", "needs the host device %s, which an unprivileged LXC container does not have", src)
		keep = append(keep, d)
	}
	if len(devs) > 0 {
		if len(keep) == 0 {
			delete(svc, "devices")
		} else {
			svc["devices"] = keep
		}
	}
	deploy, _ := svc["deploy"].(map[string]any)
	res, _ := deploy["resources"].(map[string]any)
	resv, _ := res["reservations"].(map[string]any)
	if _, ok := resv["devices"]; ok {
		delete(resv, "devices")
		f.degrade(field+".deploy.resources.reservations.devices", "reserved devices (a GPU) are not available in the container: the service runs without them")
	}
}

func (f *fitter) capabilities(field string, svc map[string]any) {
	caps, _ := svc["cap_add"].([]any)
	for _, c := range caps {
		name := strings.TrimPrefix(strings.ToUpper(str(c)), "CAP_")
		if !safeCaps[name] {
			f.reject(field+".cap_add", "the capability %s is beyond what an unprivileged LXC container grants (safe: %s)", name, strings.Join(SafeCapabilities(), ", "))
		}
	}
}

func (f *fitter) securityOpt(field string, svc map[string]any) {
	opts, _ := svc["security_opt"].([]any)
	if len(opts) == 0 {
		return
	}
	var keep []any
	for _, o := range opts {
		s := str(o)
		if strings.HasPrefix(s, "no-new-privileges") {
			keep = append(keep, o)
			continue
		}
		f.degrade(field+".security_opt", "%q dropped: the service runs under Docker's default confinement", s)
	}
	if len(keep) == 0 {
		delete(svc, "security_opt")
	} else {
		svc["security_opt"] = keep
	}
}

func (f *fitter) network(name string, svc map[string]any) {
	field := "services." + name + ".network_mode"
	switch mode := str(svc["network_mode"]); {
	case mode == "bridge":
		delete(svc, "network_mode") // Compose's default network does the same
	case mode == "host":
		known := f.app.HostPorts[name]
		if len(known) == 0 {
			if name == f.app.Main {
				f.reject(field, "network_mode: host, and the store names no port to publish instead")
			} else {
				delete(svc, "network_mode")
				f.degrade(field, "network_mode: host dropped: the service has no port the store names, so it publishes none")
			}
			return
		}
		delete(svc, "network_mode")
		ports, _ := svc["ports"].([]any)
		for _, p := range known {
			num, proto, _ := strings.Cut(p, "/")
			ports = append(ports, num+":"+num+"/"+proto)
		}
		svc["ports"] = ports
		f.degrade(field, "network_mode: host replaced by publishing %s: discovery by broadcast (mDNS, SSDP, DLNA) does not reach the network", strings.Join(known, ", "))
	}
}

var proxyLabelRE = regexp.MustCompile(`^(traefik|runtipi|tipi|casaos)\.`)

func (f *fitter) labels(field string, svc map[string]any) {
	dropped := 0
	switch t := svc["labels"].(type) {
	case map[string]any:
		for k := range t {
			if proxyLabelRE.MatchString(k) {
				delete(t, k)
				dropped++
			}
		}
		if len(t) == 0 {
			delete(svc, "labels")
		}
	case []any:
		var keep []any
		for _, l := range t {
			k, _, _ := strings.Cut(str(l), "=")
			if proxyLabelRE.MatchString(k) {
				dropped++
				continue
			}
			keep = append(keep, l)
		}
		if len(keep) == 0 {
			delete(svc, "labels")
		} else {
			svc["labels"] = keep
		}
	}
	if dropped > 0 {
		f.degrade(field+".labels", "%d label(s) of the store's reverse proxy removed: the app is reached on its own port", dropped)
	}
}

// systemPaths are host folders a service may not mount: they are the
// container's own system, which the app would read or change in place of
// the host's.
var systemPaths = []string{"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root",
	"/run", "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/run"}

var dockerSockets = map[string]bool{"/var/run/docker.sock": true, "/run/docker.sock": true}

func under(p, prefix string) bool {
	return p == prefix || prefix == "/" || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/")
}

// hostPath maps a bind mount's source. drop removes the mount.
func (f *fitter) hostPath(field, src string) (dst string, drop bool) {
	data := DataDir(f.app.ID)
	src = withDefaults(src)
	if strings.HasPrefix(src, "./") || src == "." {
		return path.Join(data, src), false
	}
	if strings.HasPrefix(src, "~") || strings.Contains(src, "${") {
		f.reject(field, "the host folder %q is not one the importer can place", src)
		return src, false
	}
	clean := path.Clean(src)
	if under(clean, data) {
		return clean, false
	}
	for _, m := range f.app.Mounts {
		if under(clean, m.Prefix) {
			dst := path.Join(data, m.Sub, strings.TrimPrefix(clean, strings.TrimSuffix(m.Prefix, "/")))
			if m.Reason != "" {
				f.degrade(field, "%s: %s becomes %s", m.Reason, src, dst)
			}
			return dst, false
		}
	}
	switch {
	case dockerSockets[clean]:
		f.degrade(field, "the Docker socket is the app's own container's Docker: the app sees and manages only its own containers, not the host's")
		return clean, false
	case clean == "/etc/localtime" || clean == "/etc/timezone" || clean == "/usr/share/zoneinfo":
		f.degrade(field, "the host's time zone file %s is not mounted: set the time zone with TZ where the app reads it", clean)
		return "", true
	case under(clean, "/dev/dri"):
		f.degrade(field, "the GPU %s is not passed to an unprivileged container: no hardware acceleration", clean)
		return "", true
	}
	for _, s := range systemPaths {
		if under(clean, s) && !(s == "/" && clean != "/") {
			f.reject(field, "mounts the host system path %s, which an app in its own container cannot use", clean)
			return src, false
		}
	}
	dst = path.Join(data, "host", clean)
	f.degrade(field, "the host folder %s becomes the app's folder %s", clean, dst)
	return dst, false
}

func (f *fitter) volumes(field string, svc map[string]any) {
	vols, _ := svc["volumes"].([]any)
	if len(vols) == 0 {
		return
	}
	var keep []any
	for i, v := range vols {
		vf := fmt.Sprintf("%s.volumes[%d]", field, i)
		switch t := v.(type) {
		case string:
			parts := strings.Split(t, ":")
			if len(parts) < 2 || !(strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "$") || strings.HasPrefix(parts[0], "~")) {
				keep = append(keep, v) // a named volume or an anonymous one
				continue
			}
			dst, drop := f.hostPath(vf, parts[0])
			if drop {
				continue
			}
			parts[0] = dst
			keep = append(keep, strings.Join(parts, ":"))
		case map[string]any:
			if typ := str(t["type"]); typ != "bind" && typ != "" {
				keep = append(keep, v)
				continue
			}
			src := str(t["source"])
			if src == "" || !(strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "$") || strings.HasPrefix(src, "~")) {
				keep = append(keep, v)
				continue
			}
			dst, drop := f.hostPath(vf, src)
			if drop {
				continue
			}
			t["source"] = dst
			keep = append(keep, t)
		default:
			f.reject(vf, "not a volume")
		}
	}
	if len(keep) == 0 {
		delete(svc, "volumes")
	} else {
		svc["volumes"] = keep
	}
}

// movingTags name whatever is newest, not one version.
var movingTags = map[string]bool{"latest": true, "stable": true, "main": true, "master": true, "nightly": true,
	"edge": true, "dev": true, "develop": true, "beta": true, "alpha": true, "rolling": true, "release": true,
	"lts": true, "current": true, "testing": true, "unstable": true, "preview": true, "canary": true, "next": true}

// unpinned says why image does not name one version, or "".
func unpinned(image string) string {
	if image == "" {
		return "no image"
	}
	if strings.ContainsAny(image, "${} \t\n") {
		return fmt.Sprintf("the image %q is not a plain reference", image)
	}
	name, digest, hasDigest := strings.Cut(image, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	if hasDigest && strings.HasPrefix(digest, "sha256:") && tag != "" {
		return ""
	}
	if tag == "" {
		return fmt.Sprintf("the image %q names no tag (pinned images only)", image)
	}
	if movingTags[strings.ToLower(tag)] {
		return fmt.Sprintf("the image %q names the moving tag %q, not a version (pinned images only)", image, tag)
	}
	return ""
}

var versionTagRE = regexp.MustCompile(`^v[0-9]`)

func imageVersion(image string) string {
	name, _, _ := strings.Cut(image, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	if versionTagRE.MatchString(tag) {
		tag = tag[1:]
	}
	return tag
}

type published struct {
	service, port, proto string
	target               int
}

// ports rewrites every service's ports as host:container/proto (the host
// port is the port inside the app's container that Proximity forwards
// to), and names the catalog ports: the web interface is "web".
func (f *fitter) ports(svcs map[string]any, names []string) ([]catalog.Port, catalog.HealthCheck) {
	a := f.app
	var all []published
	for _, name := range names {
		svc := svcs[name].(map[string]any)
		field := "services." + name + ".ports"
		list, _ := svc["ports"].([]any)
		if name == a.Main && a.MainPort > 0 && a.MainTarget > 0 {
			found := false
			for _, p := range list {
				if pp, ok := parsePort(p); ok && pp.published == strconv.Itoa(a.MainPort) && pp.proto == "tcp" {
					found = true
				}
			}
			if !found {
				list = append(list, fmt.Sprintf("%d:%d/tcp", a.MainPort, a.MainTarget))
			}
		}
		var out []any
		for _, p := range list {
			pp, ok := parsePort(p)
			if !ok {
				f.degrade(field, "the port %v is not one the importer can publish (a range or an unreadable mapping); it is dropped", p)
				continue
			}
			if pp.loopback {
				out = append(out, pp.hostIP+":"+pp.published+":"+strconv.Itoa(pp.target)+"/"+pp.proto)
				continue
			}
			out = append(out, pp.published+":"+strconv.Itoa(pp.target)+"/"+pp.proto)
			all = append(all, published{service: name, port: pp.published, proto: pp.proto, target: pp.target})
		}
		if len(out) == 0 {
			delete(svc, "ports")
		} else {
			svc["ports"] = out
		}
	}
	main := ""
	if a.MainPort > 0 {
		want := strconv.Itoa(a.MainPort)
		for _, p := range all {
			if p.port == want && p.proto == "tcp" {
				main = want
			}
		}
		if main == "" {
			f.reject("port", "the web port %d is published by no service", a.MainPort)
			return nil, catalog.HealthCheck{}
		}
	} else {
		for _, p := range all {
			if p.service == a.Main && p.proto == "tcp" {
				main = p.port
				break
			}
		}
		if main == "" {
			f.reject("port", "the main service %s publishes no TCP port: there is no web interface to open or to check", a.Main)
			return nil, catalog.HealthCheck{}
		}
	}
	if a.Scheme == "https" {
		f.reject("scheme", "the web interface speaks only HTTPS, and Proximity's health check is plain HTTP")
		return nil, catalog.HealthCheck{}
	}
	var ports []catalog.Port
	seen := map[string]bool{}
	for _, p := range all {
		key := p.port + "/" + p.proto
		if seen[key] {
			continue
		}
		seen[key] = true
		n, _ := strconv.Atoi(p.port)
		if p.port == main && p.proto == "tcp" {
			ports = append([]catalog.Port{{Name: "web", Internal: n, Protocol: "tcp", HTTP: true}}, ports...)
			continue
		}
		ports = append(ports, catalog.Port{Name: fmt.Sprintf("%s-%d", p.proto, n), Internal: n, Protocol: p.proto})
	}
	hp := a.HealthPath
	if hp == "" || !healthPathRE.MatchString(hp) {
		hp = "/"
	}
	return ports, catalog.HealthCheck{Port: "web", Path: hp, TimeoutSec: 300}
}

// validHTTPS is the catalog's reading of an https:// URL.
func validHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && len(s) <= 2048 && !strings.ContainsAny(s, " \n\r\t\"'<>")
}

// healthPathRE is what the agent accepts as the health check's path.
var healthPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$`)

type portSpec struct {
	hostIP, published, proto string
	target                   int
	loopback                 bool
}

// parsePort reads a Compose port mapping, short ("[ip:]host:container[/proto]",
// "container") or long ({target, published, protocol, host_ip}); a port
// without a published port publishes its container port.
func parsePort(v any) (portSpec, bool) {
	var ps portSpec
	ps.proto = "tcp"
	switch t := v.(type) {
	case map[string]any:
		n, ok := portNum(withDefaults(str(t["target"])))
		if !ok {
			return ps, false
		}
		ps.target = n
		ps.published = withDefaults(str(t["published"]))
		ps.hostIP = str(t["host_ip"])
		if p := str(t["protocol"]); p != "" {
			ps.proto = p
		}
	default:
		s := withDefaults(str(v))
		if i := strings.LastIndex(s, "/"); i >= 0 {
			s, ps.proto = s[:i], s[i+1:]
		}
		parts := strings.Split(s, ":")
		var n int
		var ok bool
		switch len(parts) {
		case 1:
			n, ok = portNum(parts[0])
		case 2:
			ps.published = parts[0]
			n, ok = portNum(parts[1])
		case 3:
			ps.hostIP, ps.published = parts[0], parts[1]
			n, ok = portNum(parts[2])
		}
		if !ok {
			return ps, false
		}
		ps.target = n
	}
	if ps.proto != "tcp" && ps.proto != "udp" {
		return ps, false
	}
	if ps.published == "" || strings.Contains(ps.published, "$") {
		ps.published = strconv.Itoa(ps.target)
	}
	n, ok := portNum(ps.published)
	if !ok {
		return ps, false
	}
	ps.published = strconv.Itoa(n)
	switch ps.hostIP {
	case "", "0.0.0.0", "::", "[::]":
		ps.hostIP = ""
	default:
		ps.loopback = true
	}
	return ps, true
}

func portNum(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil && n >= 1 && n <= 65535
}

// secretNameRE is the catalog's reading of a variable that holds a secret.
var secretNameRE = regexp.MustCompile(`PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY$|_KEY_`)

var envNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

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
			if !secretNameRE.MatchString(strings.ToUpper(k)) || v == "" || strings.Contains(v, "$") {
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
			if !ok || !envNameRE.MatchString(k) || f.taken(k) {
				continue
			}
			v := str(env[k])
			if strings.Contains(v, "$") {
				continue
			}
			s := catalog.Setting{Name: k, Type: inferType(v), Label: label, Default: v}
			if secretNameRE.MatchString(k) {
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
		if secretNameRE.MatchString(name) {
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
