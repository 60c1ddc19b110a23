package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// settingsDoc reads one settings route as a generic JSON object.
func (tc *testCluster) settingsDoc(t *testing.T, path string) map[string]any {
	t.Helper()
	var out map[string]any
	if code, err := tc.call(0, "GET", path, tc.token, nil, nil, &out); err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", path, code, err)
	}
	return out
}

// TestSetNetworkDNSKeepsSubnet protects the finding "`settings set-network
// --dns 9.9.9.9` erased subnet, gateway and bridge": PATCH on every
// settings route changes only the fields it names, PUT still replaces the
// whole, null sets a field to what PUT takes when it is left out, and a
// patch that is not an object, names an unknown field or leads to invalid
// settings is 400 and changes nothing.
func TestSetNetworkDNSKeepsSubnet(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	for _, c := range []struct {
		path  string
		put   map[string]any // the settings before the patch
		patch string
		want  map[string]any // the fields the patch changes
		bad   string         // a patch whose result is refused
	}{
		{"/api/v1/settings/network",
			map[string]any{"subnet": "10.20.0.0/24", "gateway": "10.20.0.1", "dns": []any{"10.20.0.2"}, "bridge": "vmbr1"},
			`{"dns":["9.9.9.9"]}`, map[string]any{"dns": []any{"9.9.9.9"}}, `{"gateway":"10.99.0.1"}`},
		{"/api/v1/settings/resources",
			map[string]any{"swap_mb": 1024.0, "storage": "local-lvm", "backup_storage": "local"},
			`{"swap_mb":256}`, map[string]any{"swap_mb": 256.0}, `{"swap_mb":-1}`},
		{"/api/v1/settings/registry",
			map[string]any{"vmid_min": 20000.0, "vmid_max": 29999.0, "port_min": 31000.0, "port_max": 31999.0},
			`{"port_max":32999}`, map[string]any{"port_max": 32999.0}, `{"port_min":40000}`},
		{"/api/v1/settings/quotas",
			map[string]any{"max_apps": 5.0, "max_cores": 8.0, "max_memory_mb": 8192.0, "max_disk_gb": 100.0},
			`{"max_cores":16}`, map[string]any{"max_cores": 16.0}, `{"max_apps":-3}`},
		{"/api/v1/settings/audit",
			map[string]any{"max_records": 5000.0, "max_age": "720h0m0s"},
			`{"max_records":6000}`, map[string]any{"max_records": 6000.0}, `{"max_age":"forever"}`},
	} {
		t.Run(strings.TrimPrefix(c.path, "/api/v1/settings/"), func(t *testing.T) {
			if code, err := tc.call(0, "PUT", c.path, tc.token, c.put, nil, nil); err != nil || code != 200 {
				t.Fatalf("PUT: %d %v", code, err)
			}
			st, _, body := tc.raw(0, "PATCH", c.path, tc.token, c.patch, nil)
			if st != 200 {
				t.Fatalf("PATCH %s: %d %s", c.patch, st, body)
			}
			want := map[string]any{}
			for k, v := range c.put {
				want[k] = v
			}
			for k, v := range c.want {
				want[k] = v
			}
			var answered map[string]any
			_ = json.Unmarshal(body, &answered)
			if d := cmp.Diff(want, answered); d != "" {
				t.Fatalf("PATCH's answer (-want +got):\n%s", d)
			}
			if d := cmp.Diff(want, tc.settingsDoc(t, c.path)); d != "" {
				t.Fatalf("settings after PATCH (-want +got):\n%s", d)
			}
			for _, refused := range []string{c.bad, `[]`, `"x"`, `{"no_such_field":1}`, ``} {
				st, h, b := tc.raw(0, "PATCH", c.path, tc.token, refused, nil)
				assertProblem(t, st, h, b, http.StatusBadRequest)
				if d := cmp.Diff(want, tc.settingsDoc(t, c.path)); d != "" {
					t.Fatalf("a refused PATCH %q changed the settings (-want +got):\n%s", refused, d)
				}
			}
		})
	}

	// null: what PUT takes for a field left out. Clearing the subnet and
	// the gateway goes back to DHCP and keeps the DNS and the bridge.
	st, _, body := tc.raw(0, "PATCH", "/api/v1/settings/network", tc.token, `{"subnet":null,"gateway":null}`, nil)
	if st != 200 {
		t.Fatalf("PATCH with null: %d %s", st, body)
	}
	want := map[string]any{"subnet": "", "gateway": "", "dns": []any{"9.9.9.9"}, "bridge": "vmbr1"}
	if d := cmp.Diff(want, tc.settingsDoc(t, "/api/v1/settings/network")); d != "" {
		t.Fatalf("network after null patch (-want +got):\n%s", d)
	}
	// OIDC: client_secret_set is shown, never taken; a null issuer turns
	// single sign-on off (it is off already: nothing else changes).
	st, h, b := tc.raw(0, "PATCH", "/api/v1/settings/oidc", tc.token, `{"client_secret_set":true}`, nil)
	assertProblem(t, st, h, b, http.StatusBadRequest)
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/settings/oidc", tc.token, `{"issuer":null}`, nil); st != 200 {
		t.Fatalf("PATCH oidc issuer null: %d %s", st, b)
	}
	if d := tc.settingsDoc(t, "/api/v1/settings/oidc"); d["issuer"] != "" || d["client_secret_set"] != false {
		t.Fatalf("oidc after turning it off: %v", d)
	}
	st, h, b = tc.raw(0, "PATCH", "/api/v1/settings/oidc", tc.token, `{"client_id":"proximity"}`, nil)
	if p := assertProblem(t, st, h, b, http.StatusBadRequest); !strings.Contains(p.Detail, "issuer") {
		t.Fatalf("PATCH of a client without an issuer: %q", p.Detail)
	}

	// PUT stays a full replacement: a field left out is emptied.
	if code, _ := tc.call(0, "PUT", "/api/v1/settings/network", tc.token, map[string]any{"bridge": "vmbr2"}, nil, nil); code != 200 {
		t.Fatalf("PUT network: %d", code)
	}
	want = map[string]any{"subnet": "", "gateway": "", "dns": []any{}, "bridge": "vmbr2"}
	if d := cmp.Diff(want, tc.settingsDoc(t, "/api/v1/settings/network")); d != "" {
		t.Fatalf("network after PUT (-want +got):\n%s", d)
	}
}

// TestUnknownStorageRefusedNamingKnownOnes protects the finding
// "`set-resources --storage nonexistent-store` was accepted, then every
// deploy failed 5 times": a storage must be one a node reports, with
// content rootdir for containers and backup for backups; the refusal
// names it and lists the ones that would do. The nodes' storages are in
// GET /api/v1/nodes.
func TestUnknownStorageRefusedNamingKnownOnes(t *testing.T) {
	tc, _, tok := appCluster(t)
	var nodes struct {
		Items []struct {
			Name     string
			Storages []struct {
				Name, Type       string
				Content          []string
				Total, Available uint64
			}
		}
	}
	waitFor(t, "storages reported", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/nodes", tok["admin"], nil, nil, &nodes)
		return len(nodes.Items) == 1 && len(nodes.Items[0].Storages) == 2
	})
	lvm := nodes.Items[0].Storages[1]
	if lvm.Name != "local-lvm" || lvm.Type != "lvmthin" || !cmp.Equal(lvm.Content, []string{"images", "rootdir"}) || lvm.Total == 0 {
		t.Fatalf("pve1's storages: %+v", nodes.Items[0].Storages)
	}
	before := tc.settingsDoc(t, "/api/v1/settings/resources")
	for _, c := range []struct{ body, names, lists string }{
		{`{"storage":"nonexistent-store"}`, "nonexistent-store", "local-lvm"},
		{`{"storage":"local"}`, `"local"`, "local-lvm"},                    // holds no containers
		{`{"backup_storage":"local-lvm"}`, "local-lvm", "storages: local"}, // holds no backups
	} {
		for _, method := range []string{"PATCH", "PUT"} {
			body := c.body
			if method == "PUT" {
				var m map[string]any
				_ = json.Unmarshal([]byte(c.body), &m)
				full := map[string]any{"swap_mb": 512, "storage": "local-lvm", "backup_storage": "local"}
				for k, v := range m {
					full[k] = v
				}
				raw, _ := json.Marshal(full)
				body = string(raw)
			}
			st, h, b := tc.raw(0, method, "/api/v1/settings/resources", tok["admin"], body, nil)
			p := assertProblem(t, st, h, b, http.StatusBadRequest)
			if !strings.Contains(p.Detail, c.names) || !strings.Contains(p.Detail, c.lists) {
				t.Fatalf("%s %s: the refusal does not name %s and list %s: %q", method, body, c.names, c.lists, p.Detail)
			}
		}
	}
	if d := cmp.Diff(before, tc.settingsDoc(t, "/api/v1/settings/resources")); d != "" {
		t.Fatalf("refused storages changed the settings (-before +after):\n%s", d)
	}
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/settings/resources", tok["admin"], `{"storage":"local-lvm","backup_storage":"local"}`, nil); st != 200 {
		t.Fatalf("known storages: %d %s", st, b)
	}
}

// TestStorageAcceptedBeforeAnyNodeReports: a cluster set up before its
// first agent joins cannot check storage names, so it takes them (as
// documented); the agent and Proxmox still refuse one that does not
// exist when it is used.
func TestStorageAcceptedBeforeAnyNodeReports(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/settings/resources", tc.token, `{"storage":"fast-store"}`, nil); st != 200 {
		t.Fatalf("storage before any node reported: %d %s", st, b)
	}
}
