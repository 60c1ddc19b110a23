// Package catalog is the app catalog: the entry model, its strict
// validation (every error names the file and the field), loading a
// directory of YAML files, and the starter catalog that ships with
// Proximity.
package catalog

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/internal/validate"
)

// Entry is one app of the catalog.
type Entry struct {
	ID          string      `yaml:"id" json:"id"`
	Name        string      `yaml:"name" json:"name"`
	Tagline     string      `yaml:"tagline" json:"tagline"`
	Version     string      `yaml:"version" json:"version"`
	Description string      `yaml:"description" json:"description"`
	Category    string      `yaml:"category" json:"category"`
	Tags        []string    `yaml:"tags" json:"tags"`
	Icon        string      `yaml:"icon" json:"icon"`
	Website     string      `yaml:"website" json:"website"`
	Resources   Resources   `yaml:"resources" json:"resources"`
	Template    string      `yaml:"template" json:"template"`
	Ports       []Port      `yaml:"ports" json:"ports"`
	Environment []EnvVar    `yaml:"environment" json:"environment,omitempty"`
	Settings    []Setting   `yaml:"settings" json:"settings,omitempty"`
	Volumes     []string    `yaml:"volumes" json:"volumes,omitempty"`
	Compose     string      `yaml:"compose" json:"compose"`
	HealthCheck HealthCheck `yaml:"health_check" json:"health_check"`
	Update      Update      `yaml:"update" json:"update"`
	// Source is the catalog source the entry came from ("builtin" for
	// the shipped catalog); set when a source is read, never in a file.
	Source string `yaml:"-" json:"source"`
	// File is the file the entry was read from, for reports; an importer
	// sets it. It is not stored.
	File string `yaml:"-" json:"-"`
}

// Resources are an app's defaults.
type Resources struct {
	Cores    int `yaml:"cores" json:"cores"`
	MemoryMB int `yaml:"memory_mb" json:"memory_mb"`
	DiskGB   int `yaml:"disk_gb" json:"disk_gb"`
}

// Valid reports whether the resources are within the bounds of Validate.
func (r Resources) Valid() bool {
	return r.Cores >= 1 && r.Cores <= 64 && r.MemoryMB >= 128 && r.MemoryMB <= 262144 && r.DiskGB >= 1 && r.DiskGB <= 4096
}

// Port is a named port the app listens on inside its container.
type Port struct {
	Name     string `yaml:"name" json:"name"`
	Internal int    `yaml:"internal" json:"internal"`
	Protocol string `yaml:"protocol" json:"protocol"` // tcp or udp
	HTTP     bool   `yaml:"http" json:"http"`
	// Scheme is the URL scheme people open the port with: http or https;
	// "" is http for an HTTP port, and no URL for another.
	Scheme string `yaml:"scheme,omitempty" json:"scheme,omitempty"`
}

// URLScheme is the scheme of the port's URL, or "" when it has none.
func (p Port) URLScheme() string {
	if p.Scheme != "" {
		return p.Scheme
	}
	if p.HTTP {
		return "http"
	}
	return ""
}

// EnvVar is an environment variable of the Compose stack: a fixed value,
// or a secret generated at deploy time.
type EnvVar struct {
	Name     string `yaml:"name" json:"name"`
	Value    string `yaml:"value,omitempty" json:"value,omitempty"`
	Generate int    `yaml:"generate,omitempty" json:"generate,omitempty"` // length of a generated secret
}

// HealthCheck is how the platform knows the app is up: an HTTP GET of
// Path on the named port inside the container.
type HealthCheck struct {
	Port       string `yaml:"port" json:"port"`
	Path       string `yaml:"path" json:"path"`
	TimeoutSec int    `yaml:"timeout_sec" json:"timeout_sec"`
}

// Update is how the app is updated (default: pull the images and recreate).
type Update struct {
	Commands [][]string `yaml:"commands" json:"commands,omitempty"`
}

// Error is a validation failure: the file, the field and what is wrong.
type Error struct {
	File, Field, Msg string
}

func (e *Error) Error() string { return e.File + ": " + e.Field + ": " + e.Msg }

// Bounds of an entry: the catalog lives in the replicated state.
const (
	MaxTagline     = 160
	MaxDescription = 8 << 10
	MaxCompose     = 64 << 10
)

var (
	iconFileRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,60}\.svg$`)
	idRE       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	envNameRE  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	templateRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*\.tar\.(zst|xz|gz)$`)
)

// Validate checks an entry; file names it in errors.
func (e *Entry) Validate(file string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: file, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !idRE.MatchString(e.ID) {
		bad("id", "%q must be 1-40 lower-case letters, digits and dashes", e.ID)
	}
	for field, v := range map[string]string{"name": e.Name, "version": e.Version, "description": e.Description, "category": e.Category, "compose": e.Compose} {
		if strings.TrimSpace(v) == "" {
			bad(field, "required")
		}
	}
	if len(e.Tagline) > MaxTagline || strings.ContainsAny(e.Tagline, "\n\r") {
		bad("tagline", "at most %d characters on one line", MaxTagline)
	}
	if len(e.Description) > MaxDescription {
		bad("description", "longer than %d bytes", MaxDescription)
	}
	if len(e.Compose) > MaxCompose {
		bad("compose", "longer than %d bytes", MaxCompose)
	}
	if e.Icon != "" && !iconFileRE.MatchString(e.Icon) && !ValidHTTPS(e.Icon) {
		bad("icon", "%q must be an icon file name (name.svg) or an https:// URL", e.Icon)
	}
	if e.Website != "" && !strings.HasPrefix(e.Website, "https://") {
		bad("website", "%q must be an https:// URL", e.Website)
	}
	if e.Resources.Cores < 1 || e.Resources.Cores > 64 { // also in Valid
		bad("resources.cores", "%d outside 1-64", e.Resources.Cores)
	}
	if e.Resources.MemoryMB < 128 || e.Resources.MemoryMB > 262144 {
		bad("resources.memory_mb", "%d outside 128-262144", e.Resources.MemoryMB)
	}
	if e.Resources.DiskGB < 1 || e.Resources.DiskGB > 4096 {
		bad("resources.disk_gb", "%d outside 1-4096", e.Resources.DiskGB)
	}
	if !templateRE.MatchString(e.Template) {
		bad("template", "%q is not a Proxmox template file name", e.Template)
	}
	if len(e.Ports) == 0 {
		bad("ports", "at least one port is required")
	}
	names := map[string]bool{}
	for i, p := range e.Ports {
		f := fmt.Sprintf("ports[%d]", i)
		if err := validate.Label(f+".name", p.Name); err != nil {
			bad(f+".name", "%q must be a short label", p.Name)
		}
		if names[p.Name] {
			bad(f+".name", "%q is used twice", p.Name)
		}
		names[p.Name] = true
		if err := validate.Port(f+".internal", p.Internal); err != nil {
			bad(f+".internal", "%d outside 1-65535", p.Internal)
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			bad(f+".protocol", "%q must be tcp or udp", p.Protocol)
		}
		if p.HTTP && p.Protocol != "tcp" {
			bad(f+".http", "an HTTP port must be tcp")
		}
		if p.Scheme != "" && p.Scheme != "http" && p.Scheme != "https" {
			bad(f+".scheme", "%q must be http or https", p.Scheme)
		} else if p.Scheme != "" && p.Protocol != "tcp" {
			bad(f+".scheme", "a port opened with a URL must be tcp")
		}
	}
	env := map[string]bool{}
	for i, v := range e.Environment {
		f := fmt.Sprintf("environment[%d]", i)
		if !envNameRE.MatchString(v.Name) {
			bad(f+".name", "%q must be an upper-case variable name", v.Name)
		}
		if env[v.Name] {
			bad(f+".name", "%q is set twice", v.Name)
		}
		env[v.Name] = true
		if v.Generate != 0 && (v.Generate < 16 || v.Generate > 128) {
			bad(f+".generate", "%d outside 16-128", v.Generate)
		}
		if v.Generate != 0 && v.Value != "" {
			bad(f, "value and generate exclude each other")
		}
		if secretNameRE.MatchString(v.Name) && v.Value != "" {
			bad(f+".value", "%s looks like a secret: generate it (generate: 32) instead of fixing a value", v.Name)
		}
	}
	settings := e.validateSettings(bad)
	for i, v := range e.Volumes {
		if !strings.HasPrefix(v, "/") || strings.Contains(v, "..") {
			bad(fmt.Sprintf("volumes[%d]", i), "%q must be an absolute path without ..", v)
		}
	}
	if e.Compose != "" {
		var doc struct {
			Services map[string]struct {
				Image string `yaml:"image"`
				Ports []any  `yaml:"ports"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal([]byte(e.Compose), &doc); err != nil {
			bad("compose", "not YAML: %v", err)
		} else if len(doc.Services) == 0 {
			bad("compose", "a Compose document needs at least one service")
		} else {
			published := map[string]bool{}
			for name, svc := range doc.Services {
				if svc.Image == "" || strings.HasSuffix(svc.Image, ":latest") || !strings.Contains(svc.Image, ":") {
					bad("compose", "service %s: image %q must name a pinned tag", name, svc.Image)
				}
				for _, p := range svc.Ports {
					host, proto := publishedPort(fmt.Sprint(p))
					published[host+"/"+proto] = true
				}
			}
			for i, p := range e.Ports {
				if !published[fmt.Sprintf("%d/%s", p.Internal, p.Protocol)] {
					bad(fmt.Sprintf("ports[%d].internal", i), "no service of the Compose document publishes %d/%s", p.Internal, p.Protocol)
				}
			}
			for _, m := range varRE.FindAllStringSubmatch(e.Compose, -1) {
				if !env[m[1]] && !settings[m[1]] {
					bad("compose", "${%s} is neither in environment nor in settings", m[1])
				}
			}
		}
	}
	hp := e.HealthCheck
	if !names[hp.Port] {
		bad("health_check.port", "%q is not one of the ports", hp.Port)
	}
	if !strings.HasPrefix(hp.Path, "/") {
		bad("health_check.path", "%q must start with /", hp.Path)
	}
	if hp.TimeoutSec < 1 || hp.TimeoutSec > 1800 {
		bad("health_check.timeout_sec", "%d outside 1-1800", hp.TimeoutSec)
	}
	if len(e.Update.Commands) > 0 && !slices.EqualFunc(e.Update.Commands, DefaultUpdate, slices.Equal) {
		// Every update pushes the new version's Compose document and .env,
		// then pulls and recreates; other steps would not be run.
		bad("update.commands", "only the default update is supported (docker compose pull, then docker compose up -d --remove-orphans); leave it out")
	}
	return errors.Join(errs...)
}

// ValidHTTPS reports whether s is an https:// URL with a host, as an
// entry's icon and website must be.
func ValidHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && len(s) <= 2048 && !strings.ContainsAny(s, " \n\r\t\"'<>")
}

// DefaultUpdate is how every app is updated once the new version's
// Compose document and .env are in place: pull the images and recreate.
var DefaultUpdate = [][]string{{"docker", "compose", "pull"}, {"docker", "compose", "up", "-d", "--remove-orphans"}}

// secretNameRE are variable names that hold secrets; they are never
// fixed in a catalog file (finding 31: a hard-coded password).
var secretNameRE = regexp.MustCompile(`PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY$|_KEY_`)

// SecretName reports whether a variable's name says it holds a secret.
func SecretName(name string) bool { return secretNameRE.MatchString(name) }

// VariableName reports whether name is a variable name an entry may use.
func VariableName(name string) bool { return envNameRE.MatchString(name) }

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// publishedPort reads the host side of a Compose port mapping
// ("8080:80", "53:53/udp", "127.0.0.1:80:80"): the port and protocol.
func publishedPort(m string) (port, proto string) {
	proto = "tcp"
	if i := strings.LastIndex(m, "/"); i >= 0 {
		m, proto = m[:i], m[i+1:]
	}
	parts := strings.Split(m, ":")
	if len(parts) >= 2 {
		return parts[len(parts)-2], proto
	}
	return parts[0], proto
}

// PublishedPorts lists the "port/protocol" pairs a Compose document
// publishes on its host.
func PublishedPorts(compose string) ([]string, error) {
	var doc struct {
		Services map[string]struct {
			Ports []any `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(compose), &doc); err != nil {
		return nil, err
	}
	var out []string
	for _, svc := range doc.Services {
		for _, p := range svc.Ports {
			host, proto := publishedPort(fmt.Sprint(p))
			out = append(out, host+"/"+proto)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Parse decodes one entry strictly: unknown fields are errors.
func Parse(file string, data []byte) (Entry, error) {
	var e Entry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&e); err != nil {
		return e, &Error{File: file, Field: "(document)", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return e, e.Validate(file)
}

// Load reads every *.yaml file of dir in fsys. It returns the entries
// sorted by ID, or every error found; a catalog with any error is not
// loaded at all.
func Load(fsys fs.FS, dir string) ([]Entry, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, &Error{File: dir, Field: "(directory)", Msg: "no *.yaml catalog files"}
	}
	var out []Entry
	var errs []error
	seen := map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e, err := Parse(f, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := seen[e.ID]; ok {
			errs = append(errs, &Error{File: f, Field: "id", Msg: fmt.Sprintf("%q is also the id of %s", e.ID, prev)})
			continue
		}
		seen[e.ID] = f
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

//go:embed starter/*.yaml starter/icons/*.svg
var starter embed.FS

// StarterFS holds the starter catalog's files under "starter".
func StarterFS() fs.FS { return starter }

// IconPrefix is where the coordinator serves the builtin catalog's icons:
// an entry's icon "name.svg" is the URL IconPrefix+"name.svg".
const IconPrefix = "/api/v1/catalog/icons/"

// Icon returns one of the builtin catalog's icons (an SVG file), or a
// monogram ("monogram-ab.svg": the letters AB) for entries without one.
func Icon(name string) ([]byte, bool) {
	if m := monogramRE.FindStringSubmatch(name); m != nil {
		return []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64" role="img" aria-label="` +
			strings.ToUpper(m[1]) + `"><rect width="64" height="64" rx="14" fill="#475569"/><text x="32" y="41" font-family="DejaVu Sans, Arial, sans-serif" font-size="24" font-weight="700" text-anchor="middle" fill="#ffffff">` +
			strings.ToUpper(m[1]) + `</text></svg>`), true
	}
	if !iconFileRE.MatchString(name) {
		return nil, false
	}
	b, err := fs.ReadFile(starter, "starter/icons/"+name)
	return b, err == nil
}

var monogramRE = regexp.MustCompile(`^monogram-([a-z0-9]{1,2})\.svg$`)

// MonogramIcon is the icon URL of an entry that has none: a monogram of
// the first letters of its name's first two words (or of its id).
func MonogramIcon(e Entry) string {
	letters := ""
	for _, w := range strings.Fields(strings.ToLower(e.Name)) {
		for _, r := range w {
			if r < 128 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				letters += string(r)
				break
			}
		}
		if len(letters) == 2 {
			break
		}
	}
	if letters == "" {
		letters = "a"
		if id := e.ID[strings.LastIndex(e.ID, "/")+1:]; id != "" {
			letters = id[:1]
		}
	}
	return IconPrefix + "monogram-" + letters + ".svg"
}

// Starter is the catalog that ships with Proximity.
func Starter() ([]Entry, error) { return Load(starter, "starter") }
