// Package runtipi imports the apps of a Runtipi appstore: one
// apps/<id>/config.json per app (the app's metadata and its form fields)
// with its Compose stack, either docker-compose.json (Runtipi's dynamic
// compose: a list of services with isMain, internalPort, addPorts, ...)
// or docker-compose.yml (a Compose document, with x-runtipi metadata in
// the current format, or Traefik labels and ${APP_PORT} in the legacy
// one). Each app becomes a catalog entry fitted to Proximity's
// unprivileged LXC container by internal/catalog/lxcfit; form fields
// become settings. What cannot run there rejects or degrades the entry,
// with the reason in the result.
package runtipi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/lxcfit"
)

// Config is the part of config.json the importer reads.
type Config struct {
	ID                     string      `json:"id"`
	Name                   string      `json:"name"`
	Available              *bool       `json:"available"`
	Deprecated             bool        `json:"deprecated"`
	Port                   int         `json:"port"`
	Version                string      `json:"version"`
	TipiVersion            int         `json:"tipi_version"`
	Categories             []string    `json:"categories"`
	ShortDesc              string      `json:"short_desc"`
	Description            string      `json:"description"`
	Author                 string      `json:"author"`
	Source                 string      `json:"source"`
	Website                string      `json:"website"`
	HTTPS                  bool        `json:"https"`
	NoGUI                  bool        `json:"no_gui"`
	SupportedArchitectures []string    `json:"supported_architectures"`
	FormFields             []FormField `json:"form_fields"`
	DynamicConfig          bool        `json:"dynamic_config"`
}

// FormField is a field of the form Runtipi shows when installing an app.
type FormField struct {
	Type        string          `json:"type"`
	Label       string          `json:"label"`
	Hint        string          `json:"hint"`
	Placeholder string          `json:"placeholder"`
	Min         *float64        `json:"min"`
	Max         *float64        `json:"max"`
	Required    bool            `json:"required"`
	Default     json.RawMessage `json:"default"`
	Regex       string          `json:"regex"`
	EnvVariable string          `json:"env_variable"`
	Options     []struct {
		Label string `json:"label"`
		Value string `json:"value"`
	} `json:"options"`
	Encoding string `json:"encoding"`
}

// Import reads every apps/<id>/config.json under dir of fsys with its
// Compose stack. One app that cannot be read or run rejects only itself.
func Import(fsys fs.FS, dir string) catalog.ImportResult {
	var c lxcfit.Collector
	files, err := fs.Glob(fsys, path.Join(dir, "apps", "*", "config.json"))
	if err != nil || len(files) == 0 {
		c.Reject("", path.Join(dir, "apps"), "(directory)", "no apps/<id>/config.json files")
		return c.Result()
	}
	for _, file := range files {
		appDir := path.Dir(file)
		read := func(name string) ([]byte, bool, error) {
			b, err := lxcfit.ReadFile(fsys, path.Join(appDir, name))
			if err != nil {
				if _, serr := fs.Stat(fsys, path.Join(appDir, name)); serr != nil {
					return nil, false, nil
				}
				return nil, true, err
			}
			return b, true, nil
		}
		c.Guard(lxcfit.CleanID(path.Base(appDir)), file, func() (catalog.Entry, []catalog.Problem, bool) { return importApp(file, appDir, read) })
	}
	return c.Result()
}

type reader func(name string) (data []byte, exists bool, err error)

func importApp(file, appDir string, read reader) (catalog.Entry, []catalog.Problem, bool) {
	folder := path.Base(appDir)
	config, _, err := read("config.json")
	if err != nil {
		return reject(lxcfit.CleanID(folder), file, "(file)", err.Error())
	}
	files := map[string][]byte{}
	for _, name := range []string{"docker-compose.json", "docker-compose.yml", "metadata/description.md"} {
		b, exists, err := read(name)
		if err != nil {
			return reject(lxcfit.CleanID(folder), path.Join(appDir, name), "(file)", err.Error())
		}
		if exists {
			files[name] = b
		}
	}
	return ImportApp(file, folder, config, files)
}

func reject(id, file, field, reason string) (catalog.Entry, []catalog.Problem, bool) {
	return catalog.Entry{}, []catalog.Problem{{ID: id, File: file, Field: field, Reason: reason, Rejected: true}}, false
}

// ImportApp reads one app from its config.json (config, from file in the
// folder named folder) and the other files of its folder by name
// (docker-compose.json, docker-compose.yml, metadata/description.md).
// The app has no icon: Runtipi keeps its logo as a file of the store
// (metadata/logo.jpg), not at a URL.
func ImportApp(file, folder string, config []byte, files map[string][]byte) (catalog.Entry, []catalog.Problem, bool) {
	var cfg Config
	if err := json.Unmarshal(config, &cfg); err != nil {
		return reject(lxcfit.CleanID(folder), file, "(document)", "not JSON: "+err.Error())
	}
	id := lxcfit.CleanID(cfg.ID)
	if id == "" {
		id = lxcfit.CleanID(folder)
	}
	if id == "" {
		return reject("", file, "id", "no id")
	}
	if cfg.Available != nil && !*cfg.Available {
		return reject(id, file, "available", "the store marks the app unavailable")
	}
	if cfg.Deprecated {
		return reject(id, file, "deprecated", "the store marks the app deprecated")
	}
	if cfg.NoGUI {
		return reject(id, file, "no_gui", "the app has no web interface, and Proximity knows an app is up by an HTTP check of its web port")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return reject(id, file, "port", fmt.Sprintf("%d is not a port", cfg.Port))
	}
	app := lxcfit.App{
		ID:            id,
		File:          file,
		Name:          strings.TrimSpace(cfg.Name),
		Category:      "other",
		Architectures: cfg.SupportedArchitectures,
		HostPorts:     map[string][]string{},
	}
	if app.Name == "" {
		app.Name = folder
	}
	if len(cfg.Categories) > 0 {
		app.Category = lxcfit.Category(cfg.Categories[0])
		for _, c := range cfg.Categories[1:] {
			app.Tags = append(app.Tags, lxcfit.Category(c))
		}
	}
	for _, u := range []string{cfg.Website, cfg.Source} {
		if strings.HasPrefix(u, "https://") {
			app.Website = u
			break
		}
	}
	if v := strings.TrimSpace(cfg.Version); v != "" && v != "latest" {
		app.Version = v
	}
	desc := strings.TrimSpace(cfg.Description)
	if md := strings.TrimSpace(string(files["metadata/description.md"])); md != "" {
		desc = md
	}
	app.Description = lxcfit.Describe(strings.TrimSpace(cfg.ShortDesc), desc, app.Name)

	var problems []catalog.Problem
	degrade := func(field, format string, args ...any) {
		problems = append(problems, catalog.Problem{ID: id, File: file, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if cfg.HTTPS {
		degrade("https", "Runtipi serves the app over HTTPS only, through its proxy; Proximity opens it over plain HTTP on its port (put a TLS proxy in front if the app needs a secure origin)")
	}
	settings, bad := formSettings(cfg.FormFields, degrade)
	if bad != nil {
		bad.ID, bad.File = id, file
		return catalog.Entry{}, append(problems, *bad), false
	}
	app.Settings = settings

	var doc map[string]any
	var mainTarget int
	composeFile := path.Join(path.Dir(file), "docker-compose.json")
	switch {
	case files["docker-compose.json"] != nil:
		var err error
		doc, app.Main, mainTarget, err = fromDynamic(files["docker-compose.json"], func(field, format string, args ...any) {
			problems = append(problems, catalog.Problem{ID: id, File: composeFile, Field: field, Reason: fmt.Sprintf(format, args...)})
		})
		if err != nil {
			return catalog.Entry{}, append(problems, catalog.Problem{ID: id, File: composeFile, Field: "(document)", Reason: err.Error(), Rejected: true}), false
		}
	case files["docker-compose.yml"] != nil:
		composeFile = path.Join(path.Dir(file), "docker-compose.yml")
		var err error
		doc, app.Main, mainTarget, err = fromYAML(files["docker-compose.yml"], cfg.Port)
		if err != nil {
			return catalog.Entry{}, append(problems, catalog.Problem{ID: id, File: composeFile, Field: "(document)", Reason: err.Error(), Rejected: true}), false
		}
	default:
		return reject(id, file, "(compose)", "neither docker-compose.json nor docker-compose.yml")
	}
	if app.Main == "" {
		return catalog.Entry{}, append(problems, catalog.Problem{ID: id, File: composeFile, Field: "services", Reason: "no main service (isMain, x-runtipi.is_main or the one publishing ${APP_PORT})", Rejected: true}), false
	}
	app.MainPort = cfg.Port
	if app.MainPort == 0 {
		app.MainPort = mainTarget
	}
	app.MainTarget = mainTarget
	app.File, app.MetaFile = composeFile, file
	svcs, _ := doc["services"].(map[string]any)
	if main, _ := svcs[app.Main].(map[string]any); lxcfit.Str(main["network_mode"]) == "host" && mainTarget > 0 {
		app.MainPort, app.MainTarget = mainTarget, 0 // the app listens on the container's own port
		app.HostPorts[app.Main] = []string{strconv.Itoa(mainTarget) + "/tcp"}
	}
	for name, v := range svcs {
		svc, _ := v.(map[string]any)
		if lxcfit.Str(svc["network_mode"]) != "host" {
			continue
		}
		for _, p := range hostModePorts(svc) {
			app.HostPorts[name] = appendNew(app.HostPorts[name], p)
		}
	}

	data := lxcfit.DataDir(id)
	resolve := func(name string) (string, bool) {
		switch name {
		case "APP_DATA_DIR":
			return data, true
		case "ROOT_FOLDER_HOST", "RUNTIPI_ROOT":
			return "/runtipi", true
		case "RUNTIPI_MEDIA_DIR":
			return "/runtipi/media", true
		case "APP_PORT":
			return strconv.Itoa(app.MainPort), true
		case "APP_PROTOCOL":
			return "http", true
		case "APP_EXPOSED":
			return "false", true
		case "APP_ID":
			return id, true
		}
		return "", false
	}
	app.Doc = lxcfit.Subst(doc, resolve).(map[string]any)
	app.Mounts = []lxcfit.Mount{
		{Prefix: "/runtipi/media", Sub: "media", Reason: "Runtipi's shared media folder becomes the app's own"},
		{Prefix: "/runtipi/app-data/" + id, Sub: ""},
		{Prefix: "/runtipi", Sub: "runtipi", Reason: "a folder of Runtipi's own becomes a folder of the app"},
	}
	host := fmt.Sprintf("localhost:%d", app.MainPort)
	for _, v := range []string{"APP_DOMAIN", "APP_HOST", "LOCAL_DOMAIN"} {
		if !hasSetting(app.Settings, v) {
			app.Settings = append(app.Settings, catalog.Setting{Name: v, Type: catalog.TypeString,
				Label: "Host name", Description: "The host name (and port) people reach the app at.", Default: host})
		}
	}
	e, more, ok := lxcfit.Fit(app)
	return e, append(problems, more...), ok
}

func hasSetting(list []catalog.Setting, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// hostModePorts are the ports a service in network_mode host publishes
// in the document: in that mode they are the ports it listens on.
func hostModePorts(svc map[string]any) []string {
	var out []string
	list, _ := svc["ports"].([]any)
	for _, p := range list {
		s := lxcfit.Str(p)
		proto := "tcp"
		if i := strings.LastIndex(s, "/"); i >= 0 {
			s, proto = s[:i], s[i+1:]
		}
		parts := strings.Split(s, ":")
		if n, err := strconv.Atoi(parts[len(parts)-1]); err == nil && n >= 1 && n <= 65535 && (proto == "tcp" || proto == "udp") {
			out = append(out, strconv.Itoa(n)+"/"+proto)
		}
	}
	return out
}

// fromYAML reads docker-compose.yml: the current format marks the main
// service with x-runtipi.is_main and its internal_port; the legacy one
// publishes ${APP_PORT} on it.
func fromYAML(data []byte, port int) (doc map[string]any, main string, target int, err error) {
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, "", 0, fmt.Errorf("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	doc, ok := lxcfit.Normalize(raw).(map[string]any)
	if !ok {
		return nil, "", 0, fmt.Errorf("not a Compose document")
	}
	svcs, _ := doc["services"].(map[string]any)
	for _, name := range sortedKeys(svcs) {
		svc, _ := svcs[name].(map[string]any)
		x, _ := svc["x-runtipi"].(map[string]any)
		if b, _ := x["is_main"].(bool); b && main == "" {
			main = name
			if n, ok := portNumber(x["internal_port"]); ok {
				target = n
			}
		}
	}
	if main != "" {
		return doc, main, target, nil
	}
	for _, name := range sortedKeys(svcs) {
		svc, _ := svcs[name].(map[string]any)
		list, _ := svc["ports"].([]any)
		for _, p := range list {
			s := lxcfit.Str(p)
			if m, ok := p.(map[string]any); ok {
				s = lxcfit.Str(m["published"])
			}
			if strings.Contains(s, "APP_PORT") || (port > 0 && strings.HasPrefix(s, strconv.Itoa(port)+":")) {
				return doc, name, 0, nil
			}
		}
	}
	if len(svcs) == 1 {
		for name := range svcs {
			main = name
		}
	}
	return doc, main, 0, nil
}

func portNumber(v any) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(lxcfit.Str(v)))
	return n, err == nil && n >= 1 && n <= 65535
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeJSON decodes strictly enough: numbers stay numbers, and trailing
// data is an error.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the document")
	}
	return nil
}
