package server

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/apps"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// offerVersion makes the replicated catalog offer version of entry id,
// its Compose document marked with a comment naming the version and, if
// setting is not empty, with a new plain setting whose default is "yes"
// (as a reload of a source with a newer entry would).
func offerVersion(t *testing.T, tc *testCluster, id, version, setting string) {
	t.Helper()
	var cs fsm.CatalogState
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		cs = *s.Catalog
		cs.Entries = append([]catalog.Entry(nil), s.Catalog.Entries...)
	})
	found := false
	for i, e := range cs.Entries {
		if e.ID != id {
			continue
		}
		found = true
		e.Version = version
		e.Compose += "# version " + version + "\n"
		e.Settings = append([]catalog.Setting(nil), e.Settings...)
		if setting != "" {
			e.Settings = append(e.Settings, catalog.Setting{Name: setting, Type: "string", Label: setting, Default: "yes"})
		}
		cs.Entries[i] = e
	}
	if !found {
		t.Fatalf("no catalog entry %s", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tc.leaderServer().Cluster().Propose(ctx, fsm.Command{Type: fsm.CmdSetCatalog, RequestID: "offer-" + id + "-" + version, SetCatalog: &cs})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("offer %s %s: %v", id, version, err)
	}
}

type updateView struct {
	ID, Status, Error, Operation string
	CatalogVersion               string            `json:"catalog_version"`
	UpdateAvailable              *string           `json:"update_available"`
	AutoUpdate                   string            `json:"auto_update"`
	MaintenanceWindow            string            `json:"maintenance_window"`
	MaintenanceWindowMinutes     int               `json:"maintenance_window_minutes"`
	Settings                     map[string]string `json:"settings"`
}

func (tc *testCluster) updateView(token, id string) updateView {
	tc.t.Helper()
	var v updateView
	if code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/apps/"+id, token, nil, nil, &v); err != nil || code != 200 {
		tc.t.Fatalf("get app %s: %d %v", id, code, err)
	}
	return v
}

// listUpdatable lists the apps ?update_available=value shows to token.
func (tc *testCluster) listUpdatable(token, value string) (int, []string) {
	var out struct{ Items []updateView }
	code, _ := tc.call(tc.waitLeader(), "GET", "/api/v1/apps?update_available="+value, token, nil, nil, &out)
	var ids []string
	for _, a := range out.Items {
		ids = append(ids, a.ID)
	}
	return code, ids
}

const composePath = "/opt/proximity/app/compose.yaml"

// TestUpdateMovesAppToOfferedVersion: update_available shows the newer
// version the catalog offers (and the list filters on it); an update
// without anything newer is 409, a version the catalog does not offer
// 400 naming what it offers; the update pushes the new Compose document
// and adds the new setting's default to the .env, and the app records
// the new version.
func TestUpdateMovesAppToOfferedVersion(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "dash")
	v := tc.updateView(tok["alice"], a.ID)
	if v.CatalogVersion != "0.10.9" || v.UpdateAvailable != nil || v.AutoUpdate != "off" || v.MaintenanceWindowMinutes != 60 {
		t.Fatalf("deployed app: %+v", v)
	}
	st, _, body := tc.raw(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], "", nil)
	if st != http.StatusConflict || !strings.Contains(string(body), "already at version 0.10.9") {
		t.Fatalf("update with nothing newer: %d %s", st, body)
	}

	offerVersion(t, tc, "homepage", "0.10.10", "UPDATE_MARKER")
	if v = tc.updateView(tok["alice"], a.ID); v.UpdateAvailable == nil || *v.UpdateAvailable != "0.10.10" || v.CatalogVersion != "0.10.9" {
		t.Fatalf("after a newer version is offered: %+v", v)
	}
	if code, ids := tc.listUpdatable(tok["alice"], "true"); code != 200 || len(ids) != 1 || ids[0] != a.ID {
		t.Fatalf("?update_available=true: %d %v", code, ids)
	}
	if code, ids := tc.listUpdatable(tok["alice"], "false"); code != 200 || len(ids) != 0 {
		t.Fatalf("?update_available=false: %d %v", code, ids)
	}
	if code, ids := tc.listUpdatable(tok["bob"], "true"); code != 200 || len(ids) != 0 {
		t.Fatalf("bob's ?update_available=true: %d %v", code, ids)
	}
	if st, _, body := tc.raw(0, "GET", "/api/v1/apps?update_available=maybe", tok["alice"], "", nil); st != 400 || !strings.Contains(string(body), "update_available") {
		t.Fatalf("?update_available=maybe: %d %s", st, body)
	}
	st, _, body = tc.raw(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], `{"version":"9.9"}`, nil)
	if st != 400 || !strings.Contains(string(body), "version") || !strings.Contains(string(body), "offers 0.10.10") {
		t.Fatalf("update to a version not offered: %d %s", st, body)
	}
	st, _, body = tc.raw(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], `{"version":"0.10.9"}`, nil)
	if st != http.StatusConflict || !strings.Contains(string(body), "already at version 0.10.9") {
		t.Fatalf("update to the version it runs: %d %s", st, body)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["bob"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob updates alice's app: %d", code)
	}

	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], map[string]string{"version": "0.10.10"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	waitFor(t, "the update", 30*time.Second, func() bool {
		x := tc.updateView(tok["alice"], a.ID)
		return x.Operation == "" && x.Status == "running"
	})
	v = tc.updateView(tok["alice"], a.ID)
	if v.CatalogVersion != "0.10.10" || v.UpdateAvailable != nil || v.Error != "" || v.Settings["UPDATE_MARKER"] != "yes" {
		t.Fatalf("after the update: %+v", v)
	}
	c := ct(t, ag.sim.Store, a.VMID)
	if c == nil || !strings.Contains(c.Files[composePath], "# version 0.10.10") || !strings.Contains(c.Files["/opt/proximity/app/.env"], "UPDATE_MARKER=") {
		t.Fatalf("container after the update: %+v", c)
	}
	if bs := tc.backups(tok["alice"], a.ID); len(bs) != 1 || bs[0].Reason != "pre-update" || bs[0].Status != "ready" {
		t.Fatalf("backups after the update: %+v", bs)
	}
}

// TestFailedUpdateKeepsVersion: an update whose pull fails rolls back to
// its pre-update backup (the previous Compose document comes back) and
// the app keeps its version, the newer one still available.
func TestFailedUpdateKeepsVersion(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "dash")
	if err := ag.sim.Store.Update(func(n *pvesim.Node) error {
		n.CTs[a.VMID].Files["/var/lib/pvesim/fail-pull"] = "Error response from daemon: manifest unknown"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	offerVersion(t, tc, "homepage", "0.11.0", "")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	waitFor(t, "the rollback", 30*time.Second, func() bool {
		x := tc.updateView(tok["alice"], a.ID)
		return x.Operation == "" && x.Status == "running" && strings.Contains(x.Error, "update failed")
	})
	v := tc.updateView(tok["alice"], a.ID)
	if v.CatalogVersion != "0.10.9" || v.UpdateAvailable == nil || *v.UpdateAvailable != "0.11.0" {
		t.Fatalf("after the rollback: %+v", v)
	}
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Status != "running" || strings.Contains(c.Files[composePath], "# version 0.11.0") || c.Files[composePath] == "" {
		t.Fatalf("container after the rollback: %+v", c)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *fakeClock) String() string  { return c.Now().String() }
func hasLine(lines []fsm.LogLine, s string) bool {
	for _, l := range lines {
		if strings.Contains(l.Msg, s) {
			return true
		}
	}
	return false
}

// TestAutoUpdateOnlyInsideWindow: an app whose policy is auto gets an
// update notice when a newer version is offered, but its update starts
// only once the updater's clock is inside the maintenance window; it
// then runs as the system (in the audit log, with the app's ID) and the
// app records the new version.
func TestAutoUpdateOnlyInsideWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)} // a Saturday
	tc := newTestClusterWith(t, 1, appPolicy(fastRetries), withServers(func(cfg *Config) { cfg.UpdateClock, cfg.UpdateEvery = clock.Now, 20*time.Millisecond }))
	tc.startAgent("pve1", tc.joinToken(nil), tc.dir+"/pve1", tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	tok := appUsers(t, tc)
	a := deployRunning(t, tc, tok, "dash")

	var v updateView
	if code, err := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], map[string]any{"auto_update": "auto", "maintenance_window": "sun 03:00"}, nil, &v); err != nil || code != 200 {
		t.Fatalf("policy: %d %v", code, err)
	}
	if v.AutoUpdate != "auto" || v.MaintenanceWindow != "sun 03:00" || v.MaintenanceWindowMinutes != 60 {
		t.Fatalf("policy: %+v", v)
	}
	offerVersion(t, tc, "homepage", "0.10.10", "")
	logs := func() []fsm.LogLine {
		var l struct{ Items []fsm.LogLine }
		_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, nil, &l)
		return l.Items
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	waitFor(t, "the update notice", 15*time.Second, func() bool { return hasLine(logs(), "update available: 0.10.10") })
	// Outside the window: many rounds of the updater start nothing.
	time.Sleep(300 * time.Millisecond)
	if v = tc.updateView(tok["alice"], a.ID); v.Operation != "" || v.CatalogVersion != "0.10.9" || hasLine(logs(), "update requested") {
		t.Fatalf("outside the window: %+v", v)
	}

	clock.Set(time.Date(2026, 12, 6, 3, 20, 0, 0, time.UTC)) // Sunday, 20 minutes into the window
	waitFor(t, "the automatic update", 30*time.Second, func() bool {
		x := tc.updateView(tok["alice"], a.ID)
		return x.Operation == "" && x.CatalogVersion == "0.10.10"
	})
	if !hasLine(logs(), "update: done; the app runs version 0.10.10") {
		t.Fatalf("no update in the app's log")
	}
	var audit struct {
		Items []fsm.AuditRecord
	}
	if code, err := tc.call(0, "GET", "/api/v1/audit?per_page=100", tc.token, nil, nil, &audit); err != nil || code != 200 {
		t.Fatalf("audit: %d %v", code, err)
	}
	found := false
	for _, r := range audit.Items {
		found = found || (r.Action == "app.update.auto" && r.Actor.Name == "system" && len(r.Targets) == 1 && r.Targets[0] == a.ID)
	}
	if !found {
		t.Fatalf("no automatic update in the audit log: %+v", audit.Items)
	}
	if bs := tc.backups(tok["alice"], a.ID); len(bs) != 1 || bs[0].Reason != "pre-update" {
		t.Fatalf("backups: %+v", bs)
	}
}

// TestUpdatePolicyValidated: a bad auto_update, maintenance window or
// window length is a 400 naming the field and changes nothing; auto needs
// a window; only the owner or an admin sets the policy.
func TestUpdatePolicyValidated(t *testing.T) {
	tc, _, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "dash")
	for _, c := range []struct{ body, field string }{
		{`{"auto_update":"sometimes"}`, "auto_update: must be off, notify or auto"},
		{`{"auto_update":"auto"}`, "maintenance_window: required"},
		{`{"maintenance_window":"someday 25:00"}`, "maintenance_window:"},
		{`{"maintenance_window_minutes":0}`, "maintenance_window_minutes: must be 1-"},
		{`{"auto_update":"notify","settings":{"X":"1"}}`, "settings:"},
	} {
		st, _, body := tc.raw(0, "PATCH", "/api/v1/apps/"+a.ID, tok["alice"], c.body, nil)
		if st != 400 || !strings.Contains(string(body), c.field) {
			t.Errorf("%s: %d %s", c.body, st, body)
		}
	}
	if code, _ := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tok["bob"], map[string]string{"auto_update": "notify"}, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob sets alice's policy: %d", code)
	}
	if v := tc.updateView(tok["alice"], a.ID); v.AutoUpdate != "off" || v.MaintenanceWindow != "" {
		t.Fatalf("refused policies changed the app: %+v", v)
	}
	var v updateView
	if code, err := tc.call(0, "PATCH", "/api/v1/apps/"+a.ID, tc.token, map[string]any{"auto_update": "notify", "maintenance_window_minutes": 90}, nil, &v); err != nil || code != 200 || v.AutoUpdate != "notify" || v.MaintenanceWindowMinutes != 90 {
		t.Fatalf("the admin sets the policy: %d %v %+v", code, err, v)
	}
}

// TestUpdateRollsBackWhenCatalogMovesMidUpdate: a reload that changes the
// offered version while an update makes its backup stops the update
// before it writes any file of the entry; the backup is put back and the
// app keeps its version.
func TestUpdateRollsBackWhenCatalogMovesMidUpdate(t *testing.T) {
	tc, ag, tok := appClusterWith(t, apps.Policy{Base: 100 * time.Millisecond, Max: 200 * time.Millisecond, Attempts: 1000})
	a := deployRunning(t, tc, tok, "dash")
	offerVersion(t, tc, "homepage", "0.11.0", "")
	if err := ag.sim.Store.SetFaults(pvesim.Faults{Fail: []string{"vzdump"}}); err != nil {
		t.Fatal(err)
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	tc.waitStep(tok["alice"], a.ID, "backup")
	offerVersion(t, tc, "homepage", "0.12.0", "")
	if err := ag.sim.Store.SetFaults(pvesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollback", 30*time.Second, func() bool {
		x := tc.updateView(tok["alice"], a.ID)
		return x.Operation == "" && x.Status == "running" && strings.Contains(x.Error, "now offers 0.12.0")
	})
	v := tc.updateView(tok["alice"], a.ID)
	if v.CatalogVersion != "0.10.9" || v.UpdateAvailable == nil || *v.UpdateAvailable != "0.12.0" {
		t.Fatalf("after the rollback: %+v", v)
	}
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || strings.Contains(c.Files[composePath], "# version") {
		t.Fatalf("container after the rollback: %+v", c)
	}
}

// TestUpdateFromSourceAfterNewCommit: an app deployed from a git source
// (source/id) sees the version of a new commit after a reload and is
// updated to it: the new Compose document is pushed and the version
// recorded.
func TestUpdateFromSourceAfterNewCommit(t *testing.T) {
	tc, ag, tok := appCluster(t)
	repo := filepath.Join(t.TempDir(), "store")
	gitCommit(t, repo, map[string]string{"apps/homepage.yaml": starterEntry(t, "homepage")})
	spec := map[string]any{"name": "mine", "url": "file://" + repo, "path": "apps", "format": "proximity"}
	if code, err := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, spec, nil, nil); err != nil || code != http.StatusCreated {
		t.Fatalf("add the source: %d %v", code, err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "mine/homepage", "hostname": "dash"}, nil, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("deploy mine/homepage: %d %v", code, err)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	a = tc.waitApp(tok["alice"], a.ID, "running")
	gitCommit(t, repo, map[string]string{"apps/homepage.yaml": starterEntry(t, "homepage",
		`version: "0.10.9"`, `version: "0.11.0"`, "homepage:v0.10.9", "homepage:v0.11.0")})
	if code, err := tc.call(0, "POST", "/api/v1/catalog/reload", tc.token, nil, nil, nil); err != nil || code != 200 {
		t.Fatalf("reload: %d %v", code, err)
	}
	if v := tc.updateView(tok["alice"], a.ID); v.UpdateAvailable == nil || *v.UpdateAvailable != "0.11.0" {
		t.Fatalf("after the reload: %+v", v)
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	waitFor(t, "the update", 30*time.Second, func() bool {
		x := tc.updateView(tok["alice"], a.ID)
		return x.Operation == "" && x.CatalogVersion == "0.11.0"
	})
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || !strings.Contains(c.Files[composePath], "homepage:v0.11.0") {
		t.Fatalf("container after the update: %+v", c)
	}
}
