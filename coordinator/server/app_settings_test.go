package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

type appSettingsOut struct {
	ID, Status, Error string
	VMID              int
	Settings          map[string]string `json:"settings"`
	SecretSettings    []string          `json:"secret_settings"`
}

// containerEnv reads and parses an app's .env in its simulated container.
func containerEnv(t *testing.T, st *pvesim.Store, vmid int) (string, map[string]string) {
	t.Helper()
	c := ct(t, st, vmid)
	if c == nil {
		t.Fatalf("no CT %d", vmid)
	}
	raw := c.Files["/opt/proximity/app/.env"]
	m, err := dotenv.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("the container's .env does not parse: %v\n%s", err, raw)
	}
	return raw, m
}

// TestDeployWithSettingsWritesQuotedEnv deploys Vaultwarden with settings:
// the catalog shows them, the container's .env holds each value quoted on
// its own line and the generated admin token, and the app shows its plain
// settings and only the names of its secret ones.
func TestDeployWithSettingsWritesQuotedEnv(t *testing.T) {
	tc, ag, tok := appCluster(t)
	var entry struct {
		Settings []struct{ Name, Type string }
	}
	if code, err := tc.call(0, "GET", "/api/v1/catalog/vaultwarden", tok["alice"], nil, nil, &entry); err != nil || code != 200 {
		t.Fatalf("catalog entry: %d %v", code, err)
	}
	if !slices.ContainsFunc(entry.Settings, func(s struct{ Name, Type string }) bool { return s.Name == "ADMIN_TOKEN" && s.Type == "secret" }) {
		t.Fatalf("catalog settings: %+v", entry.Settings)
	}
	var a appSettingsOut
	body := map[string]any{"catalog_id": "vaultwarden", "hostname": "vault",
		"settings": map[string]any{"SIGNUPS_ALLOWED": true, "DOMAIN": "https://vault.example.org/$(id)"}}
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], body, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	raw, env := containerEnv(t, ag.sim.Store, vmidOf(tc, tok["alice"], a.ID))
	for _, line := range []string{"SIGNUPS_ALLOWED='true'", "DOMAIN='https://vault.example.org/$(id)'"} {
		if !slices.Contains(strings.Split(raw, "\n"), line) {
			t.Errorf(".env lacks the line %s:\n%s", line, raw)
		}
	}
	if len(env["ADMIN_TOKEN"]) != 48 {
		t.Errorf("no generated ADMIN_TOKEN of 48 characters in .env: %q", env["ADMIN_TOKEN"])
	}
	if code, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &a); err != nil || code != 200 {
		t.Fatalf("get: %d %v", code, err)
	}
	if a.Settings["SIGNUPS_ALLOWED"] != "true" || a.Settings["DOMAIN"] != "https://vault.example.org/$(id)" || !slices.Equal(a.SecretSettings, []string{"ADMIN_TOKEN"}) {
		t.Fatalf("app settings: %+v / %v", a.Settings, a.SecretSettings)
	}
	if _, ok := a.Settings["ADMIN_TOKEN"]; ok {
		t.Fatal("the app shows a secret's value")
	}
}

func vmidOf(tc *testCluster, token, id string) int {
	_, a := tc.appStatus(token, id)
	return a.VMID
}

// TestSecretSettingGivenIsNeverInRaftInTheClear deploys Pi-hole with a web
// password of the caller's: it reaches the container's .env, while the
// coordinator's data directory (Raft log, store, snapshots) holds it only
// sealed.
func TestSecretSettingGivenIsNeverInRaftInTheClear(t *testing.T) {
	tc, ag, tok := appCluster(t)
	const pw = "Correct-Horse-Battery-Staple-91"
	var a appSettingsOut
	body := map[string]any{"catalog_id": "pihole", "hostname": "dns", "settings": map[string]any{"WEBPASSWORD": pw, "TZ": "Europe/Berlin"}}
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], body, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	_, env := containerEnv(t, ag.sim.Store, vmidOf(tc, tok["alice"], a.ID))
	if env["WEBPASSWORD"] != pw || env["TZ"] != "Europe/Berlin" {
		t.Fatalf(".env: %q", env)
	}
	if files := tc.scanDataDirs("the given web password", map[string][]byte{"raw": []byte(pw)}); files == 0 {
		t.Fatal("no file scanned")
	}
}

// TestEnvInjectionRefusedAndNothingReserved: a value with a line break, a
// NUL byte, or 100 KB, given as environment (the alias) or as settings,
// is 400 naming the field and the rule, and neither an app nor a
// reservation is made.
func TestEnvInjectionRefusedAndNothingReserved(t *testing.T) {
	tc, _, tok := appCluster(t)
	cases := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"environment": map[string]any{"TZ": "a\nEVIL=1"}}, "environment.TZ: value contains a line break"},
		{map[string]any{"settings": map[string]any{"TZ": "a\nEVIL=1"}}, "settings.TZ: value contains a line break"},
		{map[string]any{"environment": map[string]any{"TZ": "a\x00b"}}, "environment.TZ: value contains a NUL byte"},
		{map[string]any{"settings": map[string]any{"TZ": strings.Repeat("x", 100<<10)}}, "settings.TZ: value is 102400 bytes, longer than the maximum 4096"},
		{map[string]any{"settings": map[string]any{"TZ": "Mars/Olympus Mons"}}, "settings.TZ: \"Mars/Olympus Mons\" does not match the pattern"},
		{map[string]any{"settings": map[string]any{"EVIL": "1"}}, "settings.EVIL: not a setting of pihole"},
		{map[string]any{"settings": map[string]any{"TZ": "UTC"}, "environment": map[string]any{"TZ": "UTC"}}, "environment.TZ: also given as settings.TZ"},
		{map[string]any{"settings": map[string]any{"TZ": map[string]any{}}}, "settings.TZ: must be a string, a number or a boolean"},
		{map[string]any{"settings": map[string]any{"WEBPASSWORD": "short"}}, "settings.WEBPASSWORD: 5 characters, fewer than the minimum 8"},
	}
	before := len(tc.listAll(0))
	for _, c := range cases {
		c.body["catalog_id"], c.body["hostname"] = "pihole", "dns"
		var p struct{ Detail string }
		code, _ := tc.call(0, "POST", "/api/v1/apps", tok["alice"], c.body, nil, &p)
		if code != http.StatusBadRequest || !strings.Contains(p.Detail, c.want) {
			t.Errorf("%.80q: %d %q; want 400 containing %q", c.want, code, p.Detail, c.want)
		}
		if strings.Contains(p.Detail, "short\"") {
			t.Errorf("the error repeats a secret value: %q", p.Detail)
		}
	}
	if after := len(tc.listAll(0)); after != before {
		t.Fatalf("reservations: %d before, %d after refused deploys", before, after)
	}
	var apps struct{ Total int }
	if code, _ := tc.call(0, "GET", "/api/v1/apps", tok["alice"], nil, nil, &apps); code != 200 || apps.Total != 0 {
		t.Fatalf("apps after refused deploys: %d %d", code, apps.Total)
	}
}
