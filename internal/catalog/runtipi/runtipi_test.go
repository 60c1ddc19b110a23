package runtipi

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/catalog"
)

func importFixtures(t *testing.T) catalog.ImportResult {
	t.Helper()
	return Import(os.DirFS("testdata/store"), ".")
}

func entry(r catalog.ImportResult, id string) (catalog.Entry, bool) {
	for _, e := range r.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return catalog.Entry{}, false
}

func i64(n int64) *int64 { return &n }

func TestImportRuntipiDynamicApp(t *testing.T) {
	r := importFixtures(t)
	got, ok := entry(r, "pastebin")
	if !ok {
		t.Fatalf("pastebin not imported; problems: %+v", r.Problems)
	}
	host := catalog.Setting{Name: "APP_DOMAIN", Type: "string", Label: "Host name", Description: "The host name (and port) people reach the app at.", Default: "localhost:8420"}
	want := catalog.Entry{
		ID:          "pastebin",
		Name:        "Pastebin",
		Version:     "3.1.4",
		Description: "Share snippets of text.\n\n# Pastebin\n\nA small pastebin, written for the tests.",
		Category:    "utilities",
		Tags:        []string{"development"},
		Website:     "https://pastebin.example.org",
		Resources:   catalog.Resources{Cores: 2, MemoryMB: 2048, DiskGB: 16},
		Template:    "debian-13-standard_13.6-1_amd64.tar.zst",
		Ports: []catalog.Port{
			{Name: "web", Internal: 8420, Protocol: "tcp", HTTP: true},
			{Name: "tcp-2222", Internal: 2222, Protocol: "tcp"},
		},
		Settings: []catalog.Setting{
			host,
			{Name: "PASTEBIN_ADMIN_PASSWORD", Type: "secret", Label: "Admin password", Required: true, Min: i64(12)},
			{Name: "PASTEBIN_ANONYMOUS", Type: "bool", Label: "Allow anonymous pastes", Default: "true"},
			{Name: "PASTEBIN_CONTACT", Type: "email", Label: "Contact"},
			{Name: "PASTEBIN_DB_PASSWORD", Type: "secret", Label: "Database password", Generate: 40},
			{Name: "PASTEBIN_PREFIX", Type: "string", Label: "Slug prefix", Pattern: "^[a-z]{2,8}$"},
			{Name: "PASTEBIN_RETENTION_DAYS", Type: "int", Label: "Days to keep", Default: "30", Min: i64(1), Max: i64(365)},
			{Name: "PASTEBIN_THEME", Type: "enum", Label: "Theme", Default: "dark", Options: []string{"light", "dark"}},
			{Name: "PASTEBIN_TITLE", Type: "string", Label: "Site title", Description: "Shown in the header", Default: "My pastes", Max: i64(64)},
			{Name: "TZ", Type: "string", Label: "Time zone", Description: "The app's time zone, e.g. Europe/Paris.", Default: "Etc/UTC"},
		},
		Volumes: []string{"/opt/proximity/data/pastebin"},
		Compose: `services:
    pastebin:
        depends_on:
            - pastebin-db
        deploy:
            resources:
                limits:
                    cpus: "1.5"
                    memory: 768M
        environment:
            ADMIN_PASSWORD: ${PASTEBIN_ADMIN_PASSWORD}
            ANONYMOUS: ${PASTEBIN_ANONYMOUS}
            CONTACT: ${PASTEBIN_CONTACT}
            DATABASE_URL: postgres://paste:${PASTEBIN_DB_PASSWORD}@pastebin-db:5432/paste
            PREFIX: ${PASTEBIN_PREFIX}
            PUBLIC_URL: http://${APP_DOMAIN}
            RETENTION_DAYS: ${PASTEBIN_RETENTION_DAYS}
            THEME: ${PASTEBIN_THEME}
            TITLE: ${PASTEBIN_TITLE}
            TZ: ${TZ}
        image: example/pastebin:3.1.4
        ports:
            - 2222:22/tcp
            - 8420:8080/tcp
        restart: unless-stopped
        volumes:
            - /opt/proximity/data/pastebin/data/pastes:/data
    pastebin-db:
        deploy:
            resources:
                limits:
                    memory: 512M
        environment:
            POSTGRES_PASSWORD: ${PASTEBIN_DB_PASSWORD}
            POSTGRES_USER: paste
        image: postgres:16.4
        restart: unless-stopped
        volumes:
            - /opt/proximity/data/pastebin/data/db:/var/lib/postgresql/data
`,
		HealthCheck: catalog.HealthCheck{Port: "web", Path: "/", TimeoutSec: 300},
		File:        "apps/pastebin/config.json",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pastebin (-want +got):\n%s", d)
	}
	// The one change: a default its own pattern refuses.
	var mine []catalog.Problem
	for _, p := range r.Problems {
		if p.ID == "pastebin" {
			mine = append(mine, p)
		}
	}
	wantProblems := []catalog.Problem{{ID: "pastebin", File: "apps/pastebin/config.json", Field: "settings.PASTEBIN_PREFIX.default",
		Reason: `the default "p" breaks the setting's own rules and is dropped`}}
	if d := cmp.Diff(wantProblems, mine); d != "" {
		t.Errorf("pastebin problems (-want +got):\n%s", d)
	}
}

func TestImportRuntipiComposeYAML(t *testing.T) {
	r := importFixtures(t)
	for _, tc := range []struct {
		id, version string
		port        int
		compose     []string
	}{
		// The legacy format: ${APP_PORT} on the main service, Traefik labels.
		{"legacy-wiki", "2.0.0", 8421, []string{"8421:3000/tcp", "/opt/proximity/data/legacy-wiki/data:/wiki"}},
		// The current one: x-runtipi is_main and internal_port; the
		// version "latest" gives way to the image's tag.
		{"modern-feed", "5.2.0", 8422, []string{"8422:80/tcp", "/opt/proximity/data/modern-feed/data:/data", "BASE_URL: http://${APP_DOMAIN}"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			e, ok := entry(r, tc.id)
			if !ok {
				t.Fatalf("not imported; problems: %+v", r.Problems)
			}
			if e.Version != tc.version || e.Ports[0].Internal != tc.port || e.HealthCheck.Port != "web" {
				t.Errorf("version %q, port %+v", e.Version, e.Ports)
			}
			for _, s := range tc.compose {
				if !strings.Contains(e.Compose, s) {
					t.Errorf("compose lacks %q:\n%s", s, e.Compose)
				}
			}
			if strings.Contains(e.Compose, "x-runtipi") || strings.Contains(e.Compose, "traefik") || strings.Contains(e.Compose, "tipi_main_network") {
				t.Errorf("the store's extensions are left:\n%s", e.Compose)
			}
		})
	}
}

func TestImportRuntipiEveryEntryValidates(t *testing.T) {
	r := importFixtures(t)
	var ids []string
	for _, e := range r.Entries {
		ids = append(ids, e.ID)
		if err := e.Validate(e.ID); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
	if d := cmp.Diff([]string{"host-dash", "https-only", "legacy-wiki", "modern-feed", "pastebin"}, ids); d != "" {
		t.Errorf("imported (-want +got):\n%s", d)
	}
}

func TestImportRuntipiRejections(t *testing.T) {
	r := importFixtures(t)
	for _, tc := range []struct {
		id, file, field, reason string
	}{
		{"gpu-miner", "apps/gpu-miner/docker-compose.json", "services.miner.privileged", "privileged container"},
		{"vpn-gate", "apps/vpn-gate/docker-compose.json", "services.gate.cap_add", "capability NET_ADMIN"},
		{"vpn-gate", "apps/vpn-gate/docker-compose.json", "services.gate.cap_add", "capability SYS_MODULE"},
		{"vpn-gate", "apps/vpn-gate/docker-compose.json", "services.gate.devices", "host device /dev/net/tun"},
		{"floating", "apps/floating/docker-compose.json", "services.floating.image", "names no tag"},
		{"arm-thing", "apps/arm-thing/config.json", "architectures", "no amd64 build"},
		{"bad-json", "apps/bad-json/config.json", "(document)", "not JSON"},
		{"bad-compose", "apps/bad-compose/docker-compose.json", "(document)", "not JSON"},
		{"hidden", "apps/hidden/config.json", "available", "unavailable"},
		{"headless", "apps/headless/config.json", "no_gui", "no web interface"},
		{"lower-env", "apps/lower-env/config.json", "form_fields[0].env_variable", "not an upper-case variable name"},
	} {
		t.Run(tc.id+"/"+tc.field, func(t *testing.T) {
			if _, ok := entry(r, tc.id); ok {
				t.Fatalf("%s was imported", tc.id)
			}
			for _, p := range r.Problems {
				if p.ID == tc.id && p.Rejected && p.File == tc.file && p.Field == tc.field && strings.Contains(p.Reason, tc.reason) {
					return
				}
			}
			t.Errorf("no rejection %s %q containing %q; problems: %+v", tc.file, tc.field, tc.reason, r.Problems)
		})
	}
}

func TestImportRuntipiDegradations(t *testing.T) {
	r := importFixtures(t)
	for _, tc := range []struct {
		id, field, reason string
		check             func(e catalog.Entry) bool
	}{
		{"host-dash", "services.dash.network_mode", "network_mode: host replaced", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "network_mode") && strings.Contains(e.Compose, "3000:3000/tcp") && e.Ports[0].Internal == 3000
		}},
		{"host-dash", "services.dash.volumes[0]", "Docker socket", func(e catalog.Entry) bool {
			return strings.Contains(e.Compose, "/var/run/docker.sock:/var/run/docker.sock:ro")
		}},
		{"host-dash", "services.dash.volumes[1]", "/etc/localtime", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "localtime")
		}},
		{"host-dash", "services.dash.security_opt", "apparmor:unconfined", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "apparmor") && strings.Contains(e.Compose, "no-new-privileges:true")
		}},
		{"host-dash", "services.dash.addToMainNetwork", "shared between apps", func(e catalog.Entry) bool { return true }},
		{"https-only", "https", "HTTPS only", func(e catalog.Entry) bool { return e.Ports[0].URLScheme() == "http" }},
		{"legacy-wiki", "networks.tipi_main_network", "external network", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "networks")
		}},
		{"legacy-wiki", "services.legacy-wiki.labels", "reverse proxy", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "labels")
		}},
		{"legacy-wiki", "services.legacy-wiki.volumes[1]", "shared media folder", func(e catalog.Entry) bool {
			return strings.Contains(e.Compose, "/opt/proximity/data/legacy-wiki/media/books:/books")
		}},
	} {
		t.Run(tc.id+"/"+tc.field, func(t *testing.T) {
			e, ok := entry(r, tc.id)
			if !ok {
				t.Fatalf("%s was not imported; problems: %+v", tc.id, r.Problems)
			}
			found := false
			for _, p := range r.Problems {
				if p.ID == tc.id && p.Field == tc.field && strings.Contains(p.Reason, tc.reason) {
					found = true
					if p.Rejected {
						t.Errorf("a degradation marked rejected: %+v", p)
					}
				}
			}
			if !found {
				t.Errorf("no degradation %q containing %q; problems: %+v", tc.field, tc.reason, r.Problems)
			}
			if !tc.check(e) {
				t.Errorf("the entry does not show the change:\n%s", e.Compose)
			}
		})
	}
}

func TestRuntipiFormFields(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		want        catalog.Setting
		problem     string
	}{
		{"random length", `{"type":"random","label":"Key","env_variable":"APP_KEY","min":64}`,
			catalog.Setting{Name: "APP_KEY", Type: "secret", Label: "Key", Generate: 64}, ""},
		{"random default length", `{"type":"random","label":"Salt","env_variable":"SALT","encoding":"hex"}`,
			catalog.Setting{Name: "SALT", Type: "secret", Label: "Salt", Generate: 32}, "base32"},
		{"short random", `{"type":"random","label":"Pin","env_variable":"PIN_SECRET","min":8}`,
			catalog.Setting{Name: "PIN_SECRET", Type: "secret", Label: "Pin", Generate: 16}, "outside 16-128"},
		{"text named like a secret", `{"type":"text","label":"Token","env_variable":"API_TOKEN","default":"abc"}`,
			catalog.Setting{Name: "API_TOKEN", Type: "secret", Label: "Token"}, "holds a secret"},
		{"fqdn", `{"type":"fqdn","label":"Domain","env_variable":"DOMAIN","required":true}`,
			catalog.Setting{Name: "DOMAIN", Type: "string", Label: "Domain", Required: true}, ""},
		{"unknown type", `{"type":"colour","label":"Colour","env_variable":"COLOUR"}`,
			catalog.Setting{Name: "COLOUR", Type: "string", Label: "Colour"}, "read as text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := `{"id":"f","name":"F","port":8000,"version":"1.0.0","form_fields":[` + tc.field + `]}`
			var s catalog.Setting
			for _, ff := range []string{"APP_KEY", "SALT", "PIN_SECRET", "API_TOKEN", "DOMAIN", "COLOUR"} {
				if strings.Contains(tc.field, `"`+ff+`"`) {
					s.Name = ff
				}
			}
			compose := `{"services":[{"name":"f","image":"f:1.0.0","isMain":true,"internalPort":80,"environment":{"X":"${` + s.Name + `}"}}]}`
			e, problems, ok := ImportApp("apps/f/config.json", "f", []byte(config), map[string][]byte{"docker-compose.json": []byte(compose)})
			if !ok {
				t.Fatalf("not imported: %+v", problems)
			}
			got, _ := e.Setting(s.Name)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("setting (-want +got):\n%s", d)
			}
			found := tc.problem == ""
			for _, p := range problems {
				if tc.problem != "" && strings.Contains(p.Reason, tc.problem) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem containing %q: %+v", tc.problem, problems)
			}
		})
	}
}

func TestImportRuntipiMalformed(t *testing.T) {
	good := `{"id":"x","name":"X","port":8000,"version":"1.0.0"}`
	for name, tc := range map[string][2]string{
		"config not JSON":       {`{"id":`, `{"services":[]}`},
		"config a list":         {`[1,2]`, `{"services":[]}`},
		"bad port":              {`{"id":"x","port":70000}`, `{"services":[{"name":"x","image":"x:1","isMain":true}]}`},
		"no services":           {good, `{"services":[]}`},
		"services not a list":   {good, `{"services":{"a":1}}`},
		"service not an object": {good, `{"services":[1]}`},
		"bad service name":      {good, `{"services":[{"name":"../x","image":"x:1"}]}`},
		"twice the same name":   {good, `{"services":[{"name":"a","image":"a:1","isMain":true},{"name":"a","image":"a:1"}]}`},
		"internalPort not port": {good, `{"services":[{"name":"a","image":"a:1","isMain":true,"internalPort":"web"}]}`},
		"environment a string":  {good, `{"services":[{"name":"a","image":"a:1","isMain":true,"internalPort":80,"environment":"X=1"}]}`},
		"volume without path":   {good, `{"services":[{"name":"a","image":"a:1","isMain":true,"internalPort":80,"volumes":[{"hostPath":"/x"}]}]}`},
		"port without host":     {good, `{"services":[{"name":"a","image":"a:1","isMain":true,"internalPort":80,"addPorts":[{"containerPort":1}]}]}`},
		"trailing data":         {good, `{"services":[]} {}`},
		"no main among several": {good, `{"services":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]}`},
	} {
		t.Run(name, func(t *testing.T) {
			_, problems, ok := ImportApp("apps/x/config.json", "x", []byte(tc[0]), map[string][]byte{"docker-compose.json": []byte(tc[1])})
			if ok {
				t.Fatal("imported")
			}
			if len(problems) == 0 || !problems[len(problems)-1].Rejected || problems[len(problems)-1].Reason == "" {
				t.Fatalf("no rejection: %+v", problems)
			}
		})
	}
}

func TestImportRuntipiNoCompose(t *testing.T) {
	fsys := fstest.MapFS{"apps/x/config.json": {Data: []byte(`{"id":"x","name":"X","port":8000}`)}}
	r := Import(fsys, ".")
	if len(r.Entries) != 0 || len(r.Problems) != 1 || r.Problems[0].Field != "(compose)" {
		t.Fatalf("%+v", r)
	}
}

func TestImportRuntipiEmptyStore(t *testing.T) {
	r := Import(fstest.MapFS{}, ".")
	if len(r.Entries) != 0 || len(r.Problems) != 1 || !r.Problems[0].Rejected {
		t.Fatalf("%+v", r)
	}
}

func genStore(n int) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("apps/gen-%d/config.json", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			`{"id":"gen-%d","name":"Generated %d","port":%d,"version":"1.%d.0","categories":["utilities"],"short_desc":"x",
			"form_fields":[{"type":"random","label":"Secret","env_variable":"GEN_SECRET","min":32},
			{"type":"text","label":"Title","env_variable":"GEN_TITLE","default":"t"}]}`, i, i, 10000+i, i))}
		fsys[fmt.Sprintf("apps/gen-%d/docker-compose.json", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			`{"schemaVersion":2,"services":[{"name":"app","image":"example/gen:1.%d.0","isMain":true,"internalPort":80,
			"environment":[{"key":"SECRET","value":"${GEN_SECRET}"},{"key":"TITLE","value":"${GEN_TITLE}"},{"key":"TZ","value":"${TZ}"}],
			"volumes":[{"hostPath":"${APP_DATA_DIR}/data","containerPath":"/data"}],"dependsOn":"db"},
			{"name":"db","image":"postgres:16.4","environment":[{"key":"POSTGRES_PASSWORD","value":"${GEN_SECRET}"}]}]}`, i))}
	}
	return fsys
}

func TestImportRuntipiGeneratedStore(t *testing.T) {
	r := Import(genStore(200), ".")
	if len(r.Entries) != 200 || len(r.Problems) != 0 {
		t.Fatalf("%d entries; problems: %+v", len(r.Entries), r.Problems[:min(3, len(r.Problems))])
	}
}

// BenchmarkImportRuntipi200 imports a store of 200 generated apps; the
// time per import is what it reports.
func BenchmarkImportRuntipi200(b *testing.B) {
	fsys := genStore(200)
	for b.Loop() {
		if r := Import(fsys, "."); len(r.Entries) != 200 {
			b.Fatalf("%d entries", len(r.Entries))
		}
	}
}
