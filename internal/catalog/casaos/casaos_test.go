package casaos

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

func TestImportCasaOSGoodApp(t *testing.T) {
	r := importFixtures(t)
	got, ok := entry(r, "whiteboard")
	if !ok {
		t.Fatalf("whiteboard not imported; problems: %+v", r.Problems)
	}
	want := catalog.Entry{
		ID:          "whiteboard",
		Name:        "Whiteboard",
		Version:     "2.4.1",
		Description: "Draw together\n\nA shared whiteboard for small teams.",
		Category:    "productivity",
		Tags:        []string{"example-labs"},
		Icon:        "https://icons.example.org/whiteboard.png",
		Resources:   catalog.Resources{Cores: 1, MemoryMB: 1280, DiskGB: 8},
		Template:    "debian-13-standard_13.6-1_amd64.tar.zst",
		Ports:       []catalog.Port{{Name: "web", Internal: 8080, Protocol: "tcp", HTTP: true}},
		Settings: []catalog.Setting{
			{Name: "BOARD_TITLE", Type: "string", Label: "Title shown above every board", Default: "Team board"},
			{Name: "MAX_BOARDS", Type: "int", Label: "How many boards may exist", Default: "20"},
			{Name: "PUID", Type: "int", Label: "User id", Description: "The user id the app's files belong to.", Default: "1000", Min: i64(0), Max: i64(65535)},
			{Name: "TZ", Type: "string", Label: "Time zone", Description: "The app's time zone, e.g. Europe/Paris.", Default: "Etc/UTC"},
		},
		Volumes: []string{"/opt/proximity/data/whiteboard"},
		Compose: `services:
    whiteboard:
        deploy:
            resources:
                limits:
                    memory: 768M
        environment:
            BOARD_TITLE: ${BOARD_TITLE}
            MAX_BOARDS: ${MAX_BOARDS}
            PUID: ${PUID}
            TZ: ${TZ}
        image: example/whiteboard:v2.4.1
        ports:
            - 8080:80/tcp
        restart: unless-stopped
        volumes:
            - source: /opt/proximity/data/whiteboard/boards
              target: /var/lib/whiteboard
              type: bind
`,
		HealthCheck: catalog.HealthCheck{Port: "web", Path: "/boards", TimeoutSec: 300},
		File:        "Apps/Whiteboard/docker-compose.yml",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("whiteboard (-want +got):\n%s", d)
	}
	for _, p := range r.Problems {
		if p.ID == "whiteboard" {
			t.Errorf("a clean app has a problem: %+v", p)
		}
	}
}

func TestImportCasaOSEveryEntryValidates(t *testing.T) {
	r := importFixtures(t)
	var ids []string
	for _, e := range r.Entries {
		ids = append(ids, e.ID)
		if err := e.Validate(e.ID); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
	if d := cmp.Diff([]string{"mediabox", "notekeeper", "whiteboard"}, ids); d != "" {
		t.Errorf("imported (-want +got):\n%s", d)
	}
}

func TestImportCasaOSRejections(t *testing.T) {
	r := importFixtures(t)
	for _, tc := range []struct {
		id, file, field, reason string
	}{
		{"privy", "Apps/Privy/docker-compose.yml", "services.privy.privileged", "privileged container"},
		{"tunneler", "Apps/Tunneler/docker-compose.yml", "services.tunneler.cap_add", "capability NET_ADMIN"},
		{"serialbridge", "Apps/SerialBridge/docker-compose.yml", "services.bridge.devices", "host device /dev/ttyUSB0"},
		{"floaty", "Apps/Floaty/docker-compose.yml", "services.floaty.image", `moving tag "latest"`},
		{"hostwatch", "Apps/HostWatch/docker-compose.yml", "services.hostwatch.volumes[0]", "host system path /proc"},
		{"armonly", "Apps/ArmOnly/docker-compose.yml", "architectures", "no amd64 build"},
		{"broken", "Apps/Broken/docker-compose.yml", "(document)", "not YAML"},
		{"hostnet", "Apps/HostNet/docker-compose.yml", "services.hostnet.network_mode", "network_mode: host"},
		{"secureui", "Apps/SecureUI/docker-compose.yml", "scheme", "only HTTPS"},
	} {
		t.Run(tc.id, func(t *testing.T) {
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

func TestImportCasaOSDegradations(t *testing.T) {
	r := importFixtures(t)
	for _, tc := range []struct {
		id, field, reason string
		check             func(e catalog.Entry) bool
	}{
		{"notekeeper", "services.app.volumes[2]", "time zone file /etc/localtime", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "/etc/localtime")
		}},
		{"notekeeper", "services.app.volumes[1]", "shared media folder", func(e catalog.Entry) bool {
			return strings.Contains(e.Compose, "/opt/proximity/data/notekeeper/media:/media")
		}},
		{"notekeeper", "services.app.volumes[3]", "Docker socket", func(e catalog.Entry) bool {
			return strings.Contains(e.Compose, "/var/run/docker.sock:/var/run/docker.sock")
		}},
		{"notekeeper", "services.app.labels", "reverse proxy", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "traefik") && strings.Contains(e.Compose, "com.example.keep")
		}},
		{"notekeeper", "services.app.environment.DB_PASSWORD", "fixes this password", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "notekeeper-pass") &&
				strings.Count(e.Compose, "${DB_PASSWORD}") == 3 &&
				cmp.Equal(e.Environment, []catalog.EnvVar{{Name: "DB_PASSWORD", Generate: 32}})
		}},
		{"notekeeper", "icon", "not an https:// URL", func(e catalog.Entry) bool { return e.Icon == "" }},
		{"mediabox", "services.mediabox.devices", "GPU /dev/dri", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "/dev/dri")
		}},
		{"mediabox", "services.mediabox.network_mode", "network_mode: host replaced", func(e catalog.Entry) bool {
			return !strings.Contains(e.Compose, "network_mode") && strings.Contains(e.Compose, "8096:8096/tcp") &&
				strings.Contains(e.Compose, "1900:1900/udp") && e.Ports[0].Internal == 8096
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

func TestImportCasaOSMalformed(t *testing.T) {
	for name, doc := range map[string]string{
		"bad YAML":      "services: [",
		"a list":        "- a\n- b\n",
		"no services":   "name: x\nx-casaos: {main: x}\n",
		"bad port_map":  "name: x\nservices:\n  x: {image: 'a:1', ports: ['80:80']}\nx-casaos: {main: x, port_map: nope}\n",
		"service list":  "name: x\nservices: [a, b]\nx-casaos: {main: a}\n",
		"no main":       "name: x\nservices:\n  a: {image: 'a:1'}\n  b: {image: 'b:1'}\n",
		"ports garbage": "name: x\nservices:\n  x: {image: 'a:1', ports: [{target: nope}]}\nx-casaos: {main: x}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, problems, ok := ImportApp("Apps/X/docker-compose.yml", "X", []byte(doc))
			if ok {
				t.Fatal("imported")
			}
			if len(problems) == 0 || !problems[len(problems)-1].Rejected {
				t.Fatalf("no rejection: %+v", problems)
			}
		})
	}
}

func TestImportCasaOSOneBadAppStopsNoOther(t *testing.T) {
	fsys := fstest.MapFS{
		"Apps/Good/docker-compose.yml": {Data: []byte(genApp(1))},
		"Apps/Bad/docker-compose.yml":  {Data: []byte("services: [")},
		"Apps/Dup/docker-compose.yml":  {Data: []byte(genApp(1))},
	}
	r := Import(fsys, ".")
	if len(r.Entries) != 1 || r.Entries[0].ID != "gen-1" {
		t.Fatalf("entries: %+v", r.Entries)
	}
	var fields []string
	for _, p := range r.Problems {
		if p.Rejected {
			fields = append(fields, p.File+" "+p.Field)
		}
	}
	want := []string{"Apps/Bad/docker-compose.yml (document)", "Apps/Good/docker-compose.yml id"}
	if d := cmp.Diff(want, fields); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}

func TestImportCasaOSEmptyStore(t *testing.T) {
	r := Import(fstest.MapFS{}, ".")
	if len(r.Entries) != 0 || len(r.Problems) != 1 || !r.Problems[0].Rejected {
		t.Fatalf("%+v", r)
	}
}

func genApp(i int) string {
	return fmt.Sprintf(`name: gen-%d
services:
  app:
    image: example/gen:1.%d.0
    environment:
      TZ: $TZ
    ports: ["%d:80"]
    volumes: ["/DATA/AppData/$AppID/data:/data"]
  db:
    image: postgres:16.4
    environment:
      POSTGRES_PASSWORD: fixed-%d
x-casaos:
  main: app
  category: Utilities
  title: {en_us: Generated %d}
  port_map: "%d"
`, i, i, 10000+i, i, i, 10000+i)
}

func genStore(n int) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("Apps/Gen%d/docker-compose.yml", i)] = &fstest.MapFile{Data: []byte(genApp(i))}
	}
	return fsys
}

func TestImportCasaOSGeneratedStore(t *testing.T) {
	r := Import(genStore(200), ".")
	if len(r.Entries) != 200 {
		t.Fatalf("%d entries; problems: %+v", len(r.Entries), r.Problems[:min(3, len(r.Problems))])
	}
}

// BenchmarkImportCasaOS200 imports a store of 200 generated apps; the
// time per import is what it reports.
func BenchmarkImportCasaOS200(b *testing.B) {
	fsys := genStore(200)
	for b.Loop() {
		if r := Import(fsys, "."); len(r.Entries) != 200 {
			b.Fatalf("%d entries", len(r.Entries))
		}
	}
}
