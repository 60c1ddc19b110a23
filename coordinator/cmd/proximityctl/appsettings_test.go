package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// TestAppSettingsCommandLine: catalog show lists an entry's settings as a
// table (and -o json is the API's entry); app deploy --set (and its alias
// --env) puts values into the container's .env; a bad value exits 1
// naming the field and rule; app configure --set changes a running app's
// settings; malformed --set arguments are usage errors (exit 2).
func TestAppSettingsCommandLine(t *testing.T) {
	ts, token := startServer(t)
	sim := startNode(t, ts, token)
	envOf := func() map[string]string {
		var vars map[string]string
		_ = sim.Store.View(func(n *pvesim.Node) error {
			for _, c := range n.CTs {
				vars, _ = dotenv.Parse([]byte(c.Files["/opt/proximity/app/.env"]))
			}
			return nil
		})
		return vars
	}

	code, out, errs := ctl(t, ts, token, "catalog", "show", "vaultwarden")
	if code != 0 || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("catalog show: %d\n%s\n%s", code, out, errs)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = strings.Join(f[1:], " ")
	}
	if !strings.HasPrefix(rows["ADMIN_TOKEN"], "secret (generated, 48 characters) no 16-128 characters") ||
		!strings.HasPrefix(rows["SIGNUPS_ALLOWED"], "bool false no - Allow sign-ups") || !strings.HasPrefix(rows["DOMAIN"], "url http://localhost") {
		t.Fatalf("catalog show rows: %q", rows)
	}
	code, out, _ = ctl(t, ts, token, "catalog", "show", "vaultwarden", "-o", "json")
	var entry struct {
		ID       string
		Settings []map[string]any
	}
	if code != 0 || json.Unmarshal([]byte(out), &entry) != nil || entry.ID != "vaultwarden" || len(entry.Settings) != 3 || entry.Settings[2]["generate"] != 48.0 {
		t.Fatalf("catalog show -o json: %d\n%s", code, out)
	}

	for _, bad := range [][]string{{"--set", "NOVALUE"}, {"--set", "=x"}, {"--set", "A=1", "--set", "A=2"}} {
		if code, _, errs := ctl(t, ts, token, append([]string{"app", "deploy", "vaultwarden", "vault"}, bad...)...); code != 2 || !strings.Contains(errs, "--set") {
			t.Errorf("deploy %v: %d %s", bad, code, errs)
		}
	}
	if code, _, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--set", "SIGNUPS_ALLOWED=maybe"); code != 1 || !strings.Contains(errs, `settings.SIGNUPS_ALLOWED: "maybe" must be true or false`) {
		t.Fatalf("deploy with a bad value: %d %s", code, errs)
	}
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--set", "SIGNUPS_ALLOWED=true", "--env", "DOMAIN=https://vault.example.org/?a=b", "--wait"); code != 0 {
		t.Fatalf("deploy --set --env --wait: %d\n%s\n%s", code, out, errs)
	}
	if env := envOf(); env["SIGNUPS_ALLOWED"] != "true" || env["DOMAIN"] != "https://vault.example.org/?a=b" || len(env["ADMIN_TOKEN"]) != 48 {
		t.Fatalf(".env after deploy: %q", env)
	}

	if code, _, errs := ctl(t, ts, token, "app", "configure", "vault"); code != 2 || !strings.Contains(errs, "--set") {
		t.Fatalf("configure without --set: %d %s", code, errs)
	}
	if code, out, errs := ctl(t, ts, token, "app", "configure", "vault", "--set", "SIGNUPS_ALLOWED=false", "--wait"); code != 0 {
		t.Fatalf("configure --wait: %d\n%s\n%s", code, out, errs)
	}
	if env := envOf(); env["SIGNUPS_ALLOWED"] != "false" || env["DOMAIN"] != "https://vault.example.org/?a=b" {
		t.Fatalf(".env after configure: %q", env)
	}
	code, out, _ = ctl(t, ts, token, "app", "show", "vault", "-o", "json")
	var a struct {
		Status         string
		Settings       map[string]string `json:"settings"`
		SecretSettings []string          `json:"secret_settings"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || a.Status != "running" || a.Settings["SIGNUPS_ALLOWED"] != "false" || len(a.SecretSettings) != 1 {
		t.Fatalf("app show -o json after configure: %d\n%s", code, out)
	}
}
