package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

type backupOut struct {
	ID, Status, Volid, Reason, Error string
}

func (tc *testCluster) backups(token, app string) []backupOut {
	var out struct{ Items []backupOut }
	if code, err := tc.call(0, "GET", "/api/v1/apps/"+app+"/backups", token, nil, nil, &out); err != nil || code != 200 {
		tc.t.Fatalf("backups: %d %v", code, err)
	}
	return out.Items
}

// TestAuditFinding16BackupRestoreUpdate: back up, restore, and update an app; a second
// mutating operation while one runs is 409; a failed update rolls back to
// its backup; no backup stays "creating" after its operation.
func TestAuditFinding16BackupRestoreUpdate(t *testing.T) {
	tc, ag, tok := appCluster(t)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "navidrome", "hostname": "music"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")

	// A slow backup, and a restore attempted meanwhile.
	if err := ag.sim.Store.SetFaults(pvesim.Faults{TaskMS: 400}); err != nil {
		t.Fatal(err)
	}
	var b backupOut
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, &b); err != nil || code != 202 || b.Status != "creating" {
		t.Fatalf("backup: %d %v %+v", code, err, b)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, nil); code != http.StatusConflict {
		t.Fatalf("second backup while one runs: %d", code)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/backups", tok["bob"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob lists alice's backups: %d", code)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	bs := tc.backups(tok["alice"], a.ID)
	if len(bs) != 1 || bs[0].Status != "ready" || !strings.HasPrefix(bs[0].Volid, "local:backup/vzdump-lxc-") {
		t.Fatalf("backups: %+v", bs)
	}

	// Restore: the container is rebuilt from the archive.
	_ = ag.sim.Store.Update(func(n *pvesim.Node) error { n.CTs[a.VMID].Files["/data/marker"] = "after-backup"; return nil })
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups/"+bs[0].ID+"/restore", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("restore: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Files["/data/marker"] != "" || c.Status != "running" {
		t.Fatalf("container after restore: %+v", c)
	}

	// Update: backup first, pull, recreate, health check.
	offerVersion(t, tc, "navidrome", "99.0.0", "")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	if bs = tc.backups(tok["alice"], a.ID); len(bs) != 2 || bs[0].Reason != "pre-update" || bs[0].Status != "ready" {
		t.Fatalf("backups after update: %+v", bs)
	}

	// A failed update rolls back to its backup and the app runs again.
	if err := ag.sim.Store.Update(func(n *pvesim.Node) error {
		n.CTs[a.VMID].Files["/var/lib/pvesim/fail-pull"] = "Error response from daemon: manifest unknown"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c := ct(t, ag.sim.Store, a.VMID); c.Files["/var/lib/pvesim/fail-pull"] == "" {
		t.Fatal("fail-pull not stored")
	}
	offerVersion(t, tc, "navidrome", "99.1.0", "")
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); code != 202 {
		t.Fatalf("update: %d", code)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	waitFor(t, "rollback", 30*time.Second, func() bool {
		_, x := tc.appStatus(tok["alice"], a.ID)
		return x.Status == "running" && strings.Contains(x.Error, "update failed")
	})
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Status != "running" {
		t.Fatalf("container after rollback: %+v", c)
	}

	// Delete a backup.
	bs = tc.backups(tok["alice"], a.ID)
	if code, _ := tc.call(0, "DELETE", "/api/v1/apps/"+a.ID+"/backups/"+bs[len(bs)-1].ID, tok["alice"], nil, nil, nil); code != 202 {
		t.Fatalf("delete backup: %d", code)
	}
	waitFor(t, "backup deleted", 10*time.Second, func() bool { return len(tc.backups(tok["alice"], a.ID)) == len(bs)-1 })
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		for _, b := range s.Backups {
			if b.Status == fsm.BackupCreating {
				t.Fatalf("backup %s still creating", b.ID)
			}
		}
	})
}

func dumpLog(t *testing.T, tc *testCluster, token, id string) {
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+id+"/logs?limit=40", token, nil, nil, &logs)
	for _, l := range logs.Items {
		t.Log(l.Msg)
	}
	_, a := tc.appStatus(token, id)
	t.Logf("%+v", a)
}
