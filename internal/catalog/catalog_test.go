package catalog

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"
)

func TestStarterCatalogIsValid(t *testing.T) {
	entries, err := Starter()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 25 {
		t.Fatalf("the starter catalog has %d entries, want at least 25", len(entries))
	}
	for _, e := range entries {
		if e.HealthCheck.Port == "" || len(e.Update.Commands) == 0 {
			t.Errorf("%s: no health check or update steps", e.ID)
		}
	}
}

const good = `id: demo
name: Demo
version: "1.0"
description: A demo.
category: test
resources: {cores: 1, memory_mb: 256, disk_gb: 2}
template: debian-13-standard_13.6-1_amd64.tar.zst
ports:
  - {name: http, internal: 8080, protocol: tcp, http: true}
environment:
  - {name: SECRET, generate: 32}
compose: |
  services:
    web:
      image: nginx:1.27
      ports: ["8080:80"]
      environment:
        SECRET: ${SECRET}
health_check: {port: http, path: /, timeout_sec: 60}
`

func TestEveryErrorNamesFileAndField(t *testing.T) {
	cases := map[string]string{
		"unknown field":    good + "colour: blue\n",
		"bad id":           strings.Replace(good, "id: demo", "id: Demo_1", 1),
		"port range":       strings.Replace(good, "internal: 8080", "internal: 70000", 1),
		"protocol":         strings.Replace(good, "protocol: tcp", "protocol: sctp", 1),
		"unpublished port": strings.Replace(good, `["8080:80"]`, `["9090:80"]`, 1),
		"undefined var":    strings.Replace(good, "${SECRET}", "${OTHER}", 1),
		"unpinned image":   strings.Replace(good, "nginx:1.27", "nginx:latest", 1),
		"health port":      strings.Replace(good, "port: http,", "port: https,", 1),
		"template":         strings.Replace(good, "debian-13-standard_13.6-1_amd64.tar.zst", "debian", 1),
		"memory":           strings.Replace(good, "memory_mb: 256", "memory_mb: 16", 1),
		"short secret":     strings.Replace(good, "generate: 32", "generate: 4", 1),
		"compose not yaml": strings.Replace(good, "    web:\n", "    web: [\n", 1),
		"scheme":           strings.Replace(good, "protocol: tcp", "protocol: tcp, scheme: ftp", 1),
		"update steps":     good + "update:\n  commands:\n    - [sh, -c, \"curl x | sh\"]\n",
	}
	want := map[string]string{
		"unknown field": "(document)", "bad id": "id", "port range": "ports[0].internal", "protocol": "ports[0].protocol",
		"unpublished port": "ports[0].internal", "undefined var": "compose", "unpinned image": "compose",
		"health port": "health_check.port", "template": "template", "memory": "resources.memory_mb",
		"short secret": "environment[0].generate", "compose not yaml": "compose", "scheme": "ports[0].scheme",
		"update steps": "update.commands",
	}
	if _, err := Parse("demo.yaml", []byte(good)); err != nil {
		t.Fatalf("the good entry: %v", err)
	}
	for name, body := range cases {
		_, err := Parse("demo.yaml", []byte(body))
		if err == nil || !strings.Contains(err.Error(), "demo.yaml: "+want[name]) {
			t.Errorf("%s: %v (want an error at demo.yaml: %s)", name, err, want[name])
		}
	}
}

func TestLoadRefusesAnyBadFile(t *testing.T) {
	fsys := fstest.MapFS{
		"c/a.yaml": {Data: []byte(good)},
		"c/b.yaml": {Data: []byte(good)}, // same id
	}
	if _, err := Load(fsys, "c"); err == nil || !strings.Contains(err.Error(), "c/b.yaml: id") {
		t.Fatalf("duplicate id: %v", err)
	}
	fsys["c/b.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(good, "id: demo", "id: other", 1))}
	entries, err := Load(fsys, "c")
	if err != nil || len(entries) != 2 || entries[0].ID != "demo" {
		t.Fatalf("two good files: %v %v", entries, err)
	}
	if _, err := Load(fstest.MapFS{}, "c"); err == nil {
		t.Fatal("an empty directory loaded")
	}
}

// TestAuditFinding31NoFixedSecretsInTheCatalog: a variable that looks like
// a secret cannot have a fixed value; the starter catalog generates all of
// them.
func TestAuditFinding31NoFixedSecretsInTheCatalog(t *testing.T) {
	body := strings.Replace(good, "  - {name: SECRET, generate: 32}", "  - {name: SECRET, generate: 32}\n  - {name: DB_PASSWORD, value: changeme}", 1)
	if _, err := Parse("demo.yaml", []byte(body)); err == nil || !strings.Contains(err.Error(), "demo.yaml: environment[1].value: DB_PASSWORD looks like a secret") {
		t.Fatalf("a fixed password: %v", err)
	}
	entries, err := Starter()
	if err != nil {
		t.Fatal(err)
	}
	generated := 0
	for _, e := range entries {
		for _, v := range e.Environment {
			if v.Generate > 0 {
				generated++
			}
		}
		for _, v := range e.Settings {
			if v.Generate > 0 {
				generated++
			}
		}
	}
	if generated < 10 {
		t.Fatalf("only %d generated secrets in the starter catalog", generated)
	}
}

// TestStarterEntriesAreComplete: every entry of the builtin catalog has a
// tagline, an icon the coordinator serves, settings (each one used by its
// Compose document), a health check and pinned images (Validate).
func TestStarterEntriesAreComplete(t *testing.T) {
	entries, err := Starter()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Tagline == "" {
			t.Errorf("%s: no tagline", e.ID)
		}
		if b, ok := Icon(e.Icon); !ok || !bytes.HasPrefix(b, []byte("<svg")) {
			t.Errorf("%s: icon %q is not served", e.ID, e.Icon)
		}
		if len(e.Settings) == 0 {
			t.Errorf("%s: no settings", e.ID)
		}
		for _, s := range e.Settings {
			if !strings.Contains(e.Compose, "${"+s.Name+"}") {
				t.Errorf("%s: setting %s is not used by the Compose document", e.ID, s.Name)
			}
		}
		if e.HealthCheck.Path == "" {
			t.Errorf("%s: no health check", e.ID)
		}
	}
}

// TestEveryEntryHasAnIcon: an entry without an icon of its own (a store's
// logo file is not served) gets a monogram the coordinator serves; the
// monogram route takes letters and digits only.
func TestEveryEntryHasAnIcon(t *testing.T) {
	for _, c := range []struct{ name, id, want string }{
		{"Actual Budget", "runtipi/actual", IconPrefix + "monogram-ab.svg"},
		{"ntfy", "ntfy", IconPrefix + "monogram-n.svg"},
		{"  ", "mine/zulip", IconPrefix + "monogram-z.svg"},
		{"Ünïcode 2fa", "x", IconPrefix + "monogram-n2.svg"},
	} {
		if got := MonogramIcon(Entry{Name: c.name, ID: c.id}); got != c.want {
			t.Errorf("%q: %s, want %s", c.name, got, c.want)
		}
	}
	b, ok := Icon("monogram-ab.svg")
	if !ok || !strings.Contains(string(b), ">AB</text>") || !strings.HasPrefix(string(b), "<svg") {
		t.Fatalf("monogram-ab.svg: %v %s", ok, b)
	}
	for _, bad := range []string{"monogram-abc.svg", "monogram-<a>.svg", "monogram-.svg", "monogram-AB.svg", "../x.svg"} {
		if _, ok := Icon(bad); ok {
			t.Errorf("%s is served", bad)
		}
	}
}
