package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// TestNetworkSettingsUsedByDeploys: with a subnet set, a deploy takes a
// static address from it and the container gets the bridge, the address,
// the gateway and the DNS server.
func TestNetworkSettingsUsedByDeploys(t *testing.T) {
	tc, ag, tok := appCluster(t)
	net := map[string]any{"subnet": "10.20.0.0/24", "gateway": "10.20.0.1", "dns": []string{"10.20.0.2"}, "bridge": "vmbr1"}
	if code, err := tc.call(0, "PUT", "/api/v1/settings/network", tok["admin"], net, nil, nil); err != nil || code != 200 {
		t.Fatalf("PUT network: %d %v", code, err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "static"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	c := ct(t, ag.sim.Store, a.VMID)
	n0 := c.Config["net0"]
	if !strings.Contains(n0, "bridge=vmbr1") || !strings.Contains(n0, "ip=10.20.0.") || !strings.Contains(n0, "/24") || !strings.Contains(n0, "gw=10.20.0.1") || c.Config["nameserver"] != "10.20.0.2" {
		t.Fatalf("container network: net0=%q nameserver=%q", n0, c.Config["nameserver"])
	}
}

// TestAuditFinding15ListingNeedsNoPerItemCalls: listing apps reads the
// replicated state only, so it answers in full while the node's agent is
// gone (the predecessor asked Proxmox once per app).
func TestAuditFinding15ListingNeedsNoPerItemCalls(t *testing.T) {
	tc, ag, tok := appCluster(t)
	ag.stop()
	for _, h := range []string{"l1", "l2", "l3", "l4", "l5", "l6"} {
		if code, _ := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": h, "node": "pve1"}, nil, nil); code != 202 {
			t.Fatalf("deploy %s: %d", h, code)
		}
	}
	var list struct {
		Items []appOut
		Total int
	}
	if code, err := tc.call(0, "GET", "/api/v1/apps?per_page=4&page=2", tok["alice"], nil, nil, &list); err != nil || code != 200 || list.Total != 6 || len(list.Items) != 2 {
		t.Fatalf("list: %d %v %+v", code, err, list)
	}
}

// TestCatalogReloadRejectsOnlyTheBadFile: a reload of the builtin source
// from --catalog-dir rejects a bad file alone (its file and field in the
// source's report) and keeps the good ones; a directory without one good
// file leaves the catalog as it was; users cannot reload.
func TestCatalogReloadRejectsOnlyTheBadFile(t *testing.T) {
	dir := t.TempDir()
	tc := newTestCluster(t, 1)
	catalog := func() (source string, n int) {
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
			if s.Catalog != nil {
				source, n = s.Catalog.Source, len(s.Catalog.Entries)
			}
		})
		return
	}
	waitFor(t, "the starter catalog", 10*time.Second, func() bool { s, _ := catalog(); return s == "starter" })
	tc.nodes[0].cfg.CatalogDir = dir
	tc.kill(0)
	tc.start(0)
	tc.waitLeader()
	user := tc.userToken("carol", "user")
	good, err := os.ReadFile("../../internal/catalog/starter/homepage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(strings.Replace(string(good), "id: homepage", "id: broken\ncolour: red", 1)), 0o644)
	if code, _ := tc.call(0, "POST", "/api/v1/catalog/reload", user, nil, nil, nil); code != http.StatusForbidden {
		t.Fatalf("reload as a user: %d", code)
	}
	var out struct {
		Entries int
		Sources []struct {
			Name, Error string
			Rejected    int
		}
	}
	// Only a bad file: the starter catalog stays, the report says why.
	if code, err := tc.call(0, "POST", "/api/v1/catalog/reload", tc.token, nil, nil, &out); err != nil || code != 200 || out.Sources[0].Error == "" {
		t.Fatalf("reload with only a bad file: %d %v %+v", code, err, out)
	}
	if source, n := catalog(); source != "starter" || n < 25 {
		t.Fatalf("the catalog changed: %s, %d entries", source, n)
	}
	os.WriteFile(filepath.Join(dir, "homepage.yaml"), good, 0o644)
	if code, err := tc.call(0, "POST", "/api/v1/catalog/reload", tc.token, nil, nil, &out); err != nil || code != 200 || out.Entries != 1 || out.Sources[0].Rejected != 1 {
		t.Fatalf("reload: %d %v %+v", code, err, out)
	}
	if source, n := catalog(); source != dir || n != 1 {
		t.Fatalf("the catalog: %s, %d entries", source, n)
	}
	var rep struct {
		From     string
		Problems []struct{ File, Field string }
	}
	if code, err := tc.call(0, "GET", "/api/v1/catalog/sources/builtin", tc.token, nil, nil, &rep); err != nil || code != 200 || rep.From != dir ||
		len(rep.Problems) != 1 || !strings.HasSuffix(rep.Problems[0].File, "broken.yaml") || !strings.Contains(rep.Problems[0].Field, "document") {
		t.Fatalf("the builtin report: %d %v %+v", code, err, rep)
	}
}
