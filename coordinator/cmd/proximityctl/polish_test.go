package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
)

// startServerWithNode starts a server and one agent on a simulated node
// named pve1, ready for deploys.
func startServerWithNode(t *testing.T) (testServer, string) {
	t.Helper()
	ts, token := startServer(t)
	var tok struct{ Token string }
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, out, _ := ctl(t, ts, token, "join-tokens", "create", "-o", "json")
		if code == 0 && json.Unmarshal([]byte(out), &tok) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("join token: %d %s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dir := t.TempDir()
	sim, err := simnode.Start(dir, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	a, err := agent.New(agent.Config{Node: "pve1", Coordinators: []string{ts.srv.GRPCAddr()}, JoinToken: tok.Token, DataDir: filepath.Join(dir, "agent"),
		Runtime: sim.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, out, _ := ctl(t, ts, token, "nodes")
		if strings.Contains(out, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ts, token
}

// apiGet is the API's own answer to GET path, as raw JSON.
func apiGet(t *testing.T, ts testServer, token, path string) []byte {
	t.Helper()
	env := map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_TOKEN": token, "PROXIMITY_CACERT": ts.caCert}
	c, err := newClient(func(k string) string { return env[k] }, connOptions{}, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.http.CloseIdleConnections()
	raw, err := c.doRaw(context.Background(), "GET", path, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return raw
}

// volatile are the fields that change between two reads of the same state
// (heartbeats, last use of the token, live metrics).
var volatile = map[string]bool{
	"last_heartbeat": true, "last_used": true, "last_used_at": true, "mem_free": true, "disk_free": true,
	"cpu": true, "mem": true, "uptime": true, "net_in": true, "net_out": true, "disk": true, "diskread": true, "diskwrite": true,
}

// TestJSONOutputIsTheAPIJSON: every read command's -o json is the API's
// JSON for the same request — the same field names (snake_case, never Go
// names such as "VMID"), every field, the same values.
func TestJSONOutputIsTheAPIJSON(t *testing.T) {
	ts, token := startServerWithNode(t)
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--wait"); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errs)
	}
	if code, out, errs := ctl(t, ts, token, "reservations", "create", "spare", "--node", "pve1"); code != 0 {
		t.Fatalf("reservation: %d %s %s", code, out, errs)
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(apiGet(t, ts, token, "/api/v1/apps"), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("apps: %v %+v", err, list)
	}
	app := list.Items[0].ID
	var res struct {
		Items []struct {
			ID       string `json:"id"`
			Hostname string `json:"hostname"`
		} `json:"items"`
	}
	if err := json.Unmarshal(apiGet(t, ts, token, "/api/v1/reservations?hostname=spare"), &res); err != nil || len(res.Items) != 1 {
		t.Fatalf("reservations: %v %+v", err, res)
	}
	var me struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(apiGet(t, ts, token, "/api/v1/me"), &me); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		path string
	}{
		{[]string{"app", "list"}, "/api/v1/apps?per_page=100"},
		{[]string{"app", "show", "vault"}, "/api/v1/apps/" + app},
		{[]string{"app", "logs", "vault", "--limit", "50"}, "/api/v1/apps/" + app + "/logs?limit=50"},
		{[]string{"app", "metrics", "vault"}, "/api/v1/apps/" + app + "/metrics"},
		{[]string{"backup", "list", "vault"}, "/api/v1/apps/" + app + "/backups?per_page=100"},
		{[]string{"catalog", "list"}, "/api/v1/catalog?per_page=100"},
		{[]string{"catalog", "show", "vaultwarden"}, "/api/v1/catalog/vaultwarden"},
		{[]string{"nodes"}, "/api/v1/nodes?per_page=100"},
		{[]string{"discover"}, "/api/v1/discover"},
		{[]string{"reservations", "list", "--per-page", "50"}, "/api/v1/reservations?page=1&per_page=50"},
		{[]string{"reservations", "get", res.Items[0].ID}, "/api/v1/reservations/" + res.Items[0].ID},
		{[]string{"cluster"}, "/api/v1/cluster"},
		{[]string{"users", "list"}, "/api/v1/users?per_page=100"},
		{[]string{"users", "tokens", "list"}, "/api/v1/users/" + me.ID + "/tokens"},
		{[]string{"me"}, "/api/v1/me"},
		{[]string{"settings", "network"}, "/api/v1/settings/network"},
		{[]string{"settings", "resources"}, "/api/v1/settings/resources"},
		{[]string{"settings", "quotas"}, "/api/v1/settings/quotas"},
		{[]string{"settings", "oidc"}, "/api/v1/settings/oidc"},
		{[]string{"settings", "registry"}, "/api/v1/settings/registry"},
		{[]string{"settings", "placement"}, "/api/v1/settings/placement"},
		{[]string{"app", "secrets", "vault"}, "/api/v1/apps/" + app + "/secrets"},
		{[]string{"audit", "--per-page", "20"}, "/api/v1/audit?page=1&per_page=20"},
		{[]string{"audit", "retention"}, "/api/v1/settings/audit"},
	}
	ignoreVolatile := cmp.FilterPath(func(p cmp.Path) bool {
		if mi, ok := p.Last().(cmp.MapIndex); ok {
			return volatile[mi.Key().String()]
		}
		return false
	}, cmp.Ignore())
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			// The state may still move between the two reads (the audit
			// records of the setup are written in batches): a difference
			// must hold on three tries to count.
			d := ""
			for try := 0; try < 3; try++ {
				if try > 0 {
					time.Sleep(300 * time.Millisecond)
				}
				code, out, errs := ctl(t, ts, token, append(c.args, "-o", "json")...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errs)
				}
				want := apiGet(t, ts, token, c.path)
				var got, api any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("-o json is not JSON: %v\n%s", err, out)
				}
				if err := json.Unmarshal(want, &api); err != nil {
					t.Fatal(err)
				}
				if d = cmp.Diff(api, got, ignoreVolatile); d == "" {
					return
				}
			}
			t.Errorf("-o json differs from GET %s (-api +cli):\n%s", c.path, d)
		})
	}
}

// TestAppNamedByHostnameWherever: app commands take an app's hostname
// where they take its ID; an unknown name, another user's app and a name
// that is no hostname are clear errors that exit 1.
func TestAppNamedByHostnameWherever(t *testing.T) {
	ts, token := startServerWithNode(t)
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--wait"); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errs)
	}
	var a app
	if code, out, errs := ctl(t, ts, token, "app", "show", "Vault", "-o", "json"); code != 0 || json.Unmarshal([]byte(out), &a) != nil || !strings.HasPrefix(a.ID, "app_") {
		t.Fatalf("show by hostname: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "app", "show", a.ID); code != 0 || !strings.Contains(out, "vault") {
		t.Fatalf("show by ID: %d %s", code, out)
	}
	if code, out, errs := ctl(t, ts, token, "app", "stop", "vault", "--wait"); code != 0 || !strings.Contains(out, "is stopped") {
		t.Fatalf("stop by hostname: %d %s %s", code, out, errs)
	}
	for _, args := range [][]string{{"app", "logs", "vault"}, {"app", "metrics", "vault"}, {"backup", "list", "vault"}, {"nodes"}} {
		code, out, errs := ctl(t, ts, token, args...)
		if code != 0 {
			t.Errorf("%v: %d %s", args, code, errs)
		}
		if strings.Contains(out, "e+") {
			t.Errorf("%v prints a number in exponent form:\n%s", args, out)
		}
	}
	if code, _, errs := ctl(t, ts, token, "app", "show", "nosuch"); code != 1 || !strings.Contains(errs, `no app is named "nosuch"`) {
		t.Errorf("unknown name: %d %s", code, errs)
	}
	if code, _, errs := ctl(t, ts, token, "app", "delete", "not a name!"); code != 1 || !strings.Contains(errs, "neither an app ID") {
		t.Errorf("a name that is no hostname: %d %s", code, errs)
	}
	// Another user does not see the app by its name either.
	code, out, errs := ctl(t, ts, token, "users", "create", "bob", "-o", "json")
	var bob user
	if code != 0 || json.Unmarshal([]byte(out), &bob) != nil {
		t.Fatalf("users create: %d %s", code, errs)
	}
	code, out, _ = ctl(t, ts, token, "users", "token", bob.ID, "-o", "json")
	var tok struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil {
		t.Fatalf("users token: %d %s", code, out)
	}
	if code, _, errs := ctl(t, ts, tok.Token, "app", "start", "vault"); code != 1 || !strings.Contains(errs, `no app is named "vault"`) {
		t.Errorf("another user's app by name: %d %s", code, errs)
	}
	// The hostname is taken: bob is told so and nothing of whose; an
	// admin is told which reservation holds it.
	if code, _, errs := ctl(t, ts, tok.Token, "app", "deploy", "vaultwarden", "vault"); code != 1 || !strings.Contains(errs, `hostname "vault" is taken`) ||
		strings.Contains(errs, "res_") || strings.Contains(errs, a.ID) {
		t.Errorf("another user deploying a taken hostname: %d %s", code, errs)
	}
	if code, _, errs := ctl(t, ts, token, "reservations", "create", "vault", "--node", "pve1"); code != 1 || !strings.Contains(errs, `hostname "vault" is taken (reservation res_`) ||
		!strings.Contains(errs, "owner app:"+a.ID) {
		t.Errorf("an admin reserving a taken hostname: %d %s", code, errs)
	}
	if code, out, errs := ctl(t, ts, token, "app", "start", "vault", "--wait"); code != 0 || !strings.Contains(out, "is running") {
		t.Fatalf("start by hostname: %d %s %s", code, out, errs)
	}

	if code, out, errs := ctl(t, ts, token, "backup", "create", "vault"); code != 0 {
		t.Fatalf("backup create: %d %s %s", code, out, errs)
	}
	// Completion offers hostnames, catalog IDs, node names and backups.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "app", "show", ""}, "vault\t"},
		{[]string{"__complete", "backup", "create", "va"}, "vault\t"},
		{[]string{"__complete", "app", "deploy", ""}, "vaultwarden\t"},
		{[]string{"__complete", "catalog", "show", "vault"}, "vaultwarden\t"},
		{[]string{"__complete", "app", "deploy", "vaultwarden", "web", "--node", ""}, "pve1\t"},
		{[]string{"__complete", "node", "remove", ""}, "pve1\t"},
		{[]string{"__complete", "backup", "restore", "vault", ""}, "bak_"},
		{[]string{"__complete", "backup", "delete", ""}, "vault\t"},
	} {
		code, out, errs := ctl(t, ts, token, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: %d %q %s; want a line starting %q", c.args, code, out, errs, c.want)
		}
	}
	if _, out, _ := ctl(t, ts, token, "__complete", "app", "show", "vault", ""); strings.Contains(out, "vault\t") {
		t.Errorf("completion offers a second app argument: %q", out)
	}
}

// TestCompletionFailsSilently: with no server to ask, completion offers
// nothing and says nothing on standard output but the directive.
func TestCompletionFailsSilently(t *testing.T) {
	env := map[string]string{"PROXIMITY_ADDR": "https://127.0.0.1:1", "PROXIMITY_TOKEN": "x"}
	start := time.Now()
	code, out, _ := ctlEnv(t, env, "__complete", "app", "show", "")
	if code != 0 || strings.TrimSpace(out) != ":4" {
		t.Fatalf("completion without a server: %d %q", code, out)
	}
	if time.Since(start) > 10*completeDeadline {
		t.Fatalf("completion took %s", time.Since(start))
	}
	if code, out, _ := ctlEnv(t, nil, "completion", "bash"); code != 0 || !strings.Contains(out, "proximityctl") {
		t.Fatalf("completion bash: %d", code)
	}
}

// TestUnknownSubcommandExits2: an unknown command at any level exits 2
// with a suggestion; it is never taken as an argument of its parent.
func TestUnknownSubcommandExits2(t *testing.T) {
	for _, c := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"app", "delet", "x"}, "delete"},
		{[]string{"apps", "lsit"}, "list"},
		{[]string{"backup", "restor", "a", "b"}, "restore"},
		{[]string{"users", "tokens", "lst"}, "list"},
		{[]string{"reservatons"}, "reservations"},
		{[]string{"settings", "netwrok"}, "network"},
		{[]string{"audit", "retentoin"}, "retention"},
	} {
		code, out, errs := ctlEnv(t, nil, c.args...)
		if code != 2 || !strings.Contains(errs, "unknown command") || !strings.Contains(errs, "\t"+c.suggest) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the suggestion %q", c.args, code, out, errs, c.suggest)
		}
	}
	// A parent alone still shows its help.
	if code, out, _ := ctlEnv(t, nil, "app"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("app alone: %d %s", code, out)
	}
}

// TestVersionFlagPrintsVersion: --version prints the stamped version.
func TestVersionFlagPrintsVersion(t *testing.T) {
	saved := version
	version, commit = "9.8.7", "abc1234"
	defer func() { version, commit = saved, "" }()
	code, out, _ := ctlEnv(t, nil, "--version")
	if code != 0 || out != "proximityctl 9.8.7 (commit abc1234)\n" {
		t.Fatalf("--version: %d %q", code, out)
	}
}

// TestTablesUseHumanUnits: sizes in binary units, CPU in percent, uptimes
// as 3d4h — never 1.34217728e+08.
func TestTablesUseHumanUnits(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{bytesIEC(134217728), "128 MiB"}, {bytesIEC(512), "512 B"}, {bytesIEC(1536 << 20), "1.5 GiB"},
		{bytesIEC(8 << 40), "8 TiB"}, {bytesIEC(1023), "1023 B"}, {bytesIEC(1024), "1 KiB"},
		{percent(0.125), "12.5%"}, {percent(0), "0%"}, {percent(2), "200%"},
		{shortDuration(3*24*time.Hour + 4*time.Hour + 5*time.Minute), "3d4h"},
		{shortDuration(4*time.Hour + 12*time.Minute + 9*time.Second), "4h12m"},
		{shortDuration(5*time.Minute + 3*time.Second), "5m3s"}, {shortDuration(42 * time.Second), "42s"},
		{shortDuration(0), "0s"}, {shortDuration(2 * 24 * time.Hour), "2d"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	row := metricsRow(map[string]any{"status": "running", "cpu": 0.031, "mem": 1.34217728e+08, "max_mem": 536870912.0,
		"disk": 1073741824.0, "max_disk": 8589934592.0, "net_in": 2048.0, "net_out": 10.0, "uptime": 273600.0})
	want := []string{"running", "3.1%", "128 MiB / 512 MiB", "1 GiB / 8 GiB", "2 KiB", "10 B", "3d4h"}
	if d := cmp.Diff(want, row); d != "" {
		t.Errorf("metrics row (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"-", "-", "-", "-", "-", "-", "-"}, metricsRow(map[string]any{"status": nil, "cpu": nil})); d != "" {
		t.Errorf("metrics row before a report (-want +got):\n%s", d)
	}
}

// TestEveryAppCommandTakesAName: every command under app and backup
// whose first argument is an app (all but deploy and list) resolves
// hostnames and completes them; a new command gets this by naming its
// argument APP in its Use.
func TestEveryAppCommandTakesAName(t *testing.T) {
	root, _ := newRoot(io.Discard, io.Discard, func(string) string { return "" })
	notApp := map[string]bool{"app deploy": true, "app list": true, "app backup": true} // app backup is the backup group again
	n := 0
	for _, top := range []string{"app", "backup"} {
		parent, _, err := root.Find([]string{top})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range parent.Commands() {
			name := top + " " + c.Name()
			if notApp[name] || c.Name() == "help" {
				continue
			}
			n++
			if firstArgKind(c) != argApp || c.ValidArgsFunction == nil {
				t.Errorf("proximityctl %s (Use %q) does not take an app's name: name its first argument APP", name, c.Use)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d app commands found", n)
	}
}
