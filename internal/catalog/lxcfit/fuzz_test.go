package lxcfit

import (
	"path"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzFit fits any Compose document as an app's. Every problem has a
// field and a reason; an app is kept exactly when no problem rejects it;
// a kept entry has the app's ID and, in its Compose document, no
// privileged service, no host network, no added capability beyond the
// safe set, and no bind mount from outside the app's data folder (except
// the Docker socket, which is the container's own).
func FuzzFit(f *testing.F) {
	for _, doc := range []string{
		"services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    volumes: [\"./conf:/etc/nginx\", \"/mnt/media:/media\"]\n",
		"services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    volumes: [\"./../../../../etc:/host-etc\"]\n",
		"services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    volumes: [\"$X/../../../../../../etc:/e\"]\n",
		"services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    volumes:\n      - {type: bind, source: ../../.., target: /x}\n",
		"services:\n  web:\n    image: nginx:1.27\n    network_mode: host\n    privileged: true\n    cap_add: [SYS_ADMIN]\n",
		"services:\n  web:\n    image: nginx:1.27\n    ports: [\"53:53/udp\", \"8080:80\"]\n    labels: {traefik.enable: \"true\"}\n    environment: [\"DB_PASSWORD=x\", \"TZ=UTC\"]\n  db:\n    image: postgres:16\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
	} {
		f.Add([]byte(doc), "web", uint16(0), uint16(0))
	}
	f.Add([]byte("services:\n  app:\n    image: x:1\n"), "app", uint16(8080), uint16(80))
	f.Fuzz(func(t *testing.T, compose []byte, main string, mainPort, mainTarget uint16) {
		var raw any
		if yaml.Unmarshal(compose, &raw) != nil {
			return
		}
		doc, ok := Normalize(raw).(map[string]any)
		if !ok {
			return
		}
		e, problems, kept := Fit(App{ID: "fuzz", File: "f.yml", Name: "Fuzz", Description: "A fuzzed app.", Category: "test",
			Doc: doc, Main: main, MainPort: int(mainPort), MainTarget: int(mainTarget), HostPorts: map[string][]string{}})
		rejected := false
		for _, p := range problems {
			if p.Field == "" || p.Reason == "" || p.ID != "fuzz" {
				t.Fatalf("a problem without its app, field or reason: %+v", p)
			}
			rejected = rejected || p.Rejected
		}
		if kept == rejected {
			t.Fatalf("kept=%v with problems %+v", kept, problems)
		}
		if !kept {
			return
		}
		if e.ID != "fuzz" {
			t.Fatalf("the entry's ID is %q", e.ID)
		}
		var out struct {
			Services map[string]map[string]any `yaml:"services"`
		}
		if err := yaml.Unmarshal([]byte(e.Compose), &out); err != nil {
			t.Fatalf("the kept Compose document does not read back: %v", err)
		}
		data := DataDir("fuzz")
		for name, svc := range out.Services {
			if b, _ := svc["privileged"].(bool); b {
				t.Fatalf("service %s is privileged", name)
			}
			if str(svc["network_mode"]) == "host" {
				t.Fatalf("service %s is on the host network", name)
			}
			caps, _ := svc["cap_add"].([]any)
			for _, c := range caps {
				if !safeCaps[strings.TrimPrefix(strings.ToUpper(str(c)), "CAP_")] {
					t.Fatalf("service %s adds the capability %v", name, c)
				}
			}
			vols, _ := svc["volumes"].([]any)
			for _, v := range vols {
				src := ""
				switch m := v.(type) {
				case string:
					if parts := strings.Split(m, ":"); len(parts) >= 2 {
						src = parts[0]
					}
				case map[string]any:
					if typ := str(m["type"]); typ == "bind" || typ == "" {
						src = str(m["source"])
					}
				}
				if src == "" || !strings.ContainsAny(src[:1], "/.$~") {
					continue // a named or anonymous volume
				}
				clean := path.Clean(src)
				if !under(clean, data) && !dockerSockets[clean] {
					t.Fatalf("service %s mounts %q from outside %s", name, src, data)
				}
			}
		}
	})
}
