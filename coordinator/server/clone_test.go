package server

import (
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// TestAuditFinding24CloneSnapshotCleanupRetried clones an app while the
// node refuses to delete snapshots: the clone still ends running, the
// temporary snapshot is recorded as a pending cleanup, and once the node
// accepts again the cleanup removes it and its record.
func TestAuditFinding24CloneSnapshotCleanupRetried(t *testing.T) {
	tc, ag, tok := appCluster(t)
	var src appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "gitea", "hostname": "git"}, nil, &src); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	src = tc.waitApp(tok["alice"], src.ID, "running")
	if err := ag.sim.Store.SetFaults(pvesim.Faults{Fail: []string{"vzdelsnapshot"}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+src.ID+"/clone", tok["bob"], map[string]string{"hostname": "git2"}, nil, nil); code != 404 {
		t.Fatalf("bob clones alice's app: %d", code)
	}
	var dst appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+src.ID+"/clone", tok["alice"], map[string]string{"hostname": "git2"}, nil, &dst); err != nil || code != 202 || dst.Status != "cloning" {
		t.Fatalf("clone: %d %v %+v", code, err, dst)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+src.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); code != 409 {
		t.Fatalf("stop of a clone's source while it is cloned: %d", code)
	}
	dst = tc.waitApp(tok["alice"], dst.ID, "running")
	if c := ct(t, ag.sim.Store, dst.VMID); c == nil || c.Status != "running" || c.Config["hostname"] != "git2" {
		t.Fatalf("clone's container: %+v", c)
	}
	snaps := func() int {
		c := ct(t, ag.sim.Store, src.VMID)
		return len(c.Snapshots)
	}
	if snaps() != 1 {
		t.Fatalf("the temporary snapshot should still be there: %d", snaps())
	}
	var pending int
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { pending = len(s.Cleanups) })
	if pending != 1 {
		t.Fatalf("pending cleanups: %d", pending)
	}
	if _, s := tc.appStatus(tok["alice"], src.ID); s.Status != "running" || s.Error != "" {
		t.Fatalf("source after the clone: %+v", s)
	}
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	waitFor(t, "the cleanup", 30*time.Second, func() bool {
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { pending = len(s.Cleanups) })
		return pending == 0 && snaps() == 0
	})
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+dst.ID+"/logs?limit=100", tok["alice"], nil, nil, &logs)
	found := false
	for _, l := range logs.Items {
		found = found || strings.Contains(l.Msg, "recorded as a pending cleanup")
	}
	if !found {
		t.Fatalf("the clone's log does not say the cleanup was recorded: %+v", logs.Items)
	}
}
