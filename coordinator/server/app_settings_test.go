package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

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

func (tc *testCluster) getAppSettings(token, id string) appSettingsOut {
	tc.t.Helper()
	var a appSettingsOut
	if code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/apps/"+id, token, nil, nil, &a); err != nil || code != 200 {
		tc.t.Fatalf("get app: %d %v", code, err)
	}
	return a
}

// TestReconfigureRewritesEnvAndRollsBackOnFailedHealth: PATCH changes a
// running app's settings (the .env is rewritten, the generated secret
// kept, the previous file saved); a change after which the health check
// fails puts the previous .env back, leaves the app running with its old
// settings and records the error; a stopped app only gets the new file.
func TestReconfigureRewritesEnvAndRollsBackOnFailedHealth(t *testing.T) {
	tc, ag, tok := appCluster(t)
	var a appSettingsOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	tc.waitApp(tok["alice"], a.ID, "running")
	vmid := vmidOf(tc, tok["alice"], a.ID)
	_, env := containerEnv(t, ag.sim.Store, vmid)
	token := env["ADMIN_TOKEN"]
	if env["SIGNUPS_ALLOWED"] != "false" || len(token) != 48 {
		t.Fatalf(".env after deploy: %q", env)
	}

	// Someone else's app is not found; bad values are 400 and change nothing.
	if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["bob"], map[string]any{"settings": map[string]any{"SIGNUPS_ALLOWED": true}}, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob reconfigures alice's app: %d", code)
	}
	for body, want := range map[string]string{
		`{"settings":{"SIGNUPS_ALLOWED":"maybe"}}`:    `settings.SIGNUPS_ALLOWED: "maybe" must be true or false`,
		`{"settings":{"DOMAIN":"https://x\nEVIL=1"}}`: "settings.DOMAIN: value contains a line break",
		`{"settings":{"NOPE":"1"}}`:                   "settings.NOPE: not a setting of vaultwarden",
		`{"settings":{"ADMIN_TOKEN":""}}`:             "settings.ADMIN_TOKEN: a generated secret cannot be emptied",
		`{"settings":{}}`:                             "settings: at least one setting",
	} {
		var p struct{ Detail string }
		if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], json.RawMessage(body), nil, &p); code != 400 || !strings.Contains(p.Detail, want) {
			t.Errorf("PATCH %s: %d %q; want 400 with %q", body, code, p.Detail, want)
		}
	}
	if got := tc.getAppSettings(tok["alice"], a.ID); got.Status != "running" || got.Settings["SIGNUPS_ALLOWED"] != "false" {
		t.Fatalf("after refused changes: %+v", got)
	}

	// A change that works.
	var r appSettingsOut
	if code, err := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], map[string]any{"settings": map[string]any{"SIGNUPS_ALLOWED": true}}, nil, &r); err != nil || code != 202 || r.Status != "reconfiguring" {
		t.Fatalf("reconfigure: %d %v %+v", code, err, r)
	}
	waitFor(t, "reconfigured", 30*time.Second, func() bool {
		x := tc.getAppSettings(tok["alice"], a.ID)
		return x.Status == "running" && x.Settings["SIGNUPS_ALLOWED"] == "true"
	})
	raw, env := containerEnv(t, ag.sim.Store, vmid)
	if env["SIGNUPS_ALLOWED"] != "true" || env["ADMIN_TOKEN"] != token || env["DOMAIN"] != "http://localhost" {
		t.Fatalf(".env after reconfigure (the generated token must be kept):\n%s", raw)
	}
	if strings.Count(raw, "\n") != len(env) {
		t.Fatalf(".env has other lines than one per variable:\n%s", raw)
	}
	if prev := ct(t, ag.sim.Store, vmid).Files["/opt/proximity/app/.env.prev"]; !strings.Contains(prev, "SIGNUPS_ALLOWED='false'") {
		t.Fatalf(".env.prev: %q", prev)
	}

	// A change the app does not survive is rolled back.
	if err := ag.sim.Store.Update(func(n *pvesim.Node) error {
		n.CTs[vmid].Files["/var/lib/pvesim/unhealthy-env"] = "DOMAIN='https://broken.example.org'"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], map[string]any{"settings": map[string]any{"DOMAIN": "https://broken.example.org"}}, nil, nil); code != 202 {
		t.Fatalf("reconfigure: %d", code)
	}
	var x appSettingsOut
	waitFor(t, "rollback", 30*time.Second, func() bool {
		x = tc.getAppSettings(tok["alice"], a.ID)
		return x.Status == "running" && strings.Contains(x.Error, "reconfigure failed")
	})
	if x.Settings["DOMAIN"] != "http://localhost" || x.Settings["SIGNUPS_ALLOWED"] != "true" {
		t.Fatalf("settings after a rolled-back reconfigure: %+v", x.Settings)
	}
	if _, env = containerEnv(t, ag.sim.Store, vmid); env["DOMAIN"] != "http://localhost" || env["SIGNUPS_ALLOWED"] != "true" || env["ADMIN_TOKEN"] != token {
		t.Fatalf(".env after rollback: %q", env)
	}
	if c := ct(t, ag.sim.Store, vmid); !strings.Contains(c.Files["/var/lib/pvesim/compose"], "80/tcp") {
		t.Fatalf("the stack is not up after rollback: %v", c.Files)
	}

	// A stopped app gets the new file and stays stopped.
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); code != 202 {
		t.Fatalf("stop: %d", code)
	}
	tc.waitApp(tok["alice"], a.ID, "stopped")
	if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], map[string]any{"settings": map[string]any{"DOMAIN": "https://vault.example.org"}}, nil, nil); code != 202 {
		t.Fatalf("reconfigure a stopped app: %d", code)
	}
	waitFor(t, "reconfigured while stopped", 30*time.Second, func() bool {
		x = tc.getAppSettings(tok["alice"], a.ID)
		return x.Status == "stopped" && x.Settings["DOMAIN"] == "https://vault.example.org"
	})
	if _, env = containerEnv(t, ag.sim.Store, vmid); env["DOMAIN"] != "https://vault.example.org" {
		t.Fatalf(".env of the stopped app: %q", env)
	}
	if x.Error != "" {
		t.Fatalf("a successful reconfigure left the error %q", x.Error)
	}
}

// TestReconfigureOfBusyAppConflicts: an app that is deploying cannot be
// reconfigured (409), and its settings stay as deployed.
func TestReconfigureOfBusyAppConflicts(t *testing.T) {
	tc, ag, tok := appCluster(t)
	if err := ag.sim.Store.SetFaults(pvesim.Faults{TaskMS: 300}); err != nil {
		t.Fatal(err)
	}
	var a appSettingsOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 || a.Status != "deploying" {
		t.Fatalf("deploy: %d %v %+v", code, err, a)
	}
	var p struct{ Detail string }
	if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], map[string]any{"settings": map[string]any{"SIGNUPS_ALLOWED": true}}, nil, &p); code != http.StatusConflict {
		t.Fatalf("reconfigure while deploying: %d %q", code, p.Detail)
	}
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	if x := tc.waitApp(tok["alice"], a.ID, "running"); x.Status != "running" {
		t.Fatal(x)
	}
	if got := tc.getAppSettings(tok["alice"], a.ID); got.Settings["SIGNUPS_ALLOWED"] != "false" {
		t.Fatalf("settings after a refused reconfigure: %+v", got.Settings)
	}
}
