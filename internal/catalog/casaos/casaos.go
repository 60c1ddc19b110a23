// Package casaos imports the apps of a CasaOS AppStore: one
// Apps/<App>/docker-compose.yml per app, a Compose document whose x-casaos
// extension (top-level and per service) describes the app. Each app
// becomes a catalog entry fitted to Proximity's unprivileged LXC
// container by internal/catalog/lxcfit; what cannot run there rejects or
// degrades the entry, with the reason in the result.
package casaos

import (
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/lxcfit"
)

// Import reads every Apps/<App>/docker-compose.yml under dir of fsys. One
// app that cannot be read or run rejects only itself.
func Import(fsys fs.FS, dir string) catalog.ImportResult {
	var c lxcfit.Collector
	files, err := fs.Glob(fsys, path.Join(dir, "Apps", "*", "docker-compose.yml"))
	if err != nil || len(files) == 0 {
		c.Reject("", path.Join(dir, "Apps"), "(directory)", "no Apps/<App>/docker-compose.yml files")
		return c.Result()
	}
	for _, file := range files {
		folder := path.Base(path.Dir(file))
		data, err := lxcfit.ReadFile(fsys, file)
		if err != nil {
			c.Reject(lxcfit.CleanID(folder), file, "(file)", err.Error())
			continue
		}
		c.Guard(lxcfit.CleanID(folder), file, func() (catalog.Entry, []catalog.Problem, bool) { return ImportApp(file, folder, data) })
	}
	return c.Result()
}

// ImportApp reads one app: its Compose document data, from file in the
// folder named folder.
func ImportApp(file, folder string, data []byte) (catalog.Entry, []catalog.Problem, bool) {
	reject := func(id, field, reason string) (catalog.Entry, []catalog.Problem, bool) {
		return catalog.Entry{}, []catalog.Problem{{ID: id, File: file, Field: field, Reason: reason, Rejected: true}}, false
	}
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return reject(lxcfit.CleanID(folder), "(document)", "not YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	doc, ok := lxcfit.Normalize(raw).(map[string]any)
	if !ok {
		return reject(lxcfit.CleanID(folder), "(document)", "not a Compose document")
	}
	x, _ := doc["x-casaos"].(map[string]any)
	storeName := lxcfit.Str(doc["name"])
	id := lxcfit.CleanID(storeName)
	if id == "" {
		id = lxcfit.CleanID(folder)
	}
	if id == "" {
		return reject("", "name", "no name to make an id of")
	}
	svcs, _ := doc["services"].(map[string]any)
	main := lxcfit.Str(x["main"])
	if main == "" && len(svcs) == 1 {
		for k := range svcs {
			main = k
		}
	}
	if main == "" {
		return reject(id, "x-casaos.main", "no main service")
	}
	mainPort := 0
	if pm := lxcfit.Str(x["port_map"]); pm != "" {
		n, err := strconv.Atoi(defaults(pm))
		if err != nil || n < 1 || n > 65535 {
			return reject(id, "x-casaos.port_map", "port_map "+strconv.Quote(pm)+" is not a port")
		}
		mainPort = n
	}
	resolve := func(name string) (string, bool) {
		switch name {
		case "AppID":
			return id, true
		case "WEBUI_PORT":
			if mainPort > 0 {
				return strconv.Itoa(mainPort), true
			}
		}
		return "", false
	}
	doc = lxcfit.Subst(doc, resolve).(map[string]any)
	svcs, _ = doc["services"].(map[string]any)

	app := lxcfit.App{
		ID:         id,
		File:       file,
		Name:       lxcfit.Localized(x["title"]),
		Category:   lxcfit.Category(lxcfit.Str(x["category"])),
		Icon:       strings.TrimSpace(lxcfit.Str(x["icon"])),
		Doc:        doc,
		Main:       main,
		MainPort:   mainPort,
		Scheme:     strings.ToLower(lxcfit.Str(x["scheme"])),
		HealthPath: indexPath(lxcfit.Str(x["index"])),
		HostPorts:  map[string][]string{},
		Described:  map[string]string{},
	}
	if app.Name == "" {
		app.Name = folder
	}
	app.Description = lxcfit.Describe(lxcfit.Localized(x["tagline"]), lxcfit.Localized(x["description"]), app.Name)
	if dev := lxcfit.Str(x["developer"]); dev != "" {
		app.Tags = []string{lxcfit.CleanID(dev)}
	}
	if archs, ok := x["architectures"].([]any); ok {
		for _, a := range archs {
			app.Architectures = append(app.Architectures, lxcfit.Str(a))
		}
	}
	app.Mounts = []lxcfit.Mount{
		{Prefix: "/DATA/AppData/" + id},
		{Prefix: "/DATA/AppData/" + storeName},
		{Prefix: "/DATA/AppData/" + folder},
		{Prefix: "/DATA/AppData", Sub: "appdata", Reason: "another app's CasaOS data folder becomes a folder of this app"},
		{Prefix: "/DATA/Media", Sub: "media", Reason: "CasaOS's shared media folder becomes the app's own"},
		{Prefix: "/DATA/Downloads", Sub: "downloads", Reason: "CasaOS's shared downloads folder becomes the app's own"},
		{Prefix: "/DATA/Gallery", Sub: "gallery", Reason: "CasaOS's shared gallery folder becomes the app's own"},
		{Prefix: "/DATA/Documents", Sub: "documents", Reason: "CasaOS's shared documents folder becomes the app's own"},
		{Prefix: "/DATA", Sub: "files", Reason: "CasaOS's shared data folder becomes the app's own"},
	}
	for name, v := range svcs {
		svc, _ := v.(map[string]any)
		sx, _ := svc["x-casaos"].(map[string]any)
		envs, _ := sx["envs"].([]any)
		for _, ev := range envs {
			em, _ := ev.(map[string]any)
			key := lxcfit.Str(em["container"])
			if key == "" {
				continue
			}
			label := firstLine(lxcfit.Localized(em["description"]))
			if label == "" {
				label = key
			}
			app.Described[key] = label
		}
		ports, _ := sx["ports"].([]any)
		for _, pv := range ports {
			pm, _ := pv.(map[string]any)
			n, err := strconv.Atoi(defaults(lxcfit.Str(pm["container"])))
			if err != nil || n < 1 || n > 65535 {
				continue
			}
			proto := strings.ToLower(lxcfit.Str(pm["protocol"]))
			if proto != "udp" {
				proto = "tcp"
			}
			app.HostPorts[name] = appendNew(app.HostPorts[name], strconv.Itoa(n)+"/"+proto)
		}
		if name == main && mainPort > 0 {
			app.HostPorts[name] = appendNew(app.HostPorts[name], strconv.Itoa(mainPort)+"/tcp")
		}
	}
	return lxcfit.Fit(app)
}

var defaultRE = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}$`)

func defaults(s string) string {
	if m := defaultRE.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		return m[1]
	}
	return strings.TrimSpace(s)
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// indexPath is the path part of the store's index ("/admin", "/?x=1").
func indexPath(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if !strings.HasPrefix(s, "/") {
		s = "/" + s
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 120 {
		s = strings.TrimSpace(string(r[:120]))
	}
	return s
}
