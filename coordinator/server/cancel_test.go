package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/apps"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// hungCreate starts a deploy of alice's on a node whose pct create never
// ends (the simulator's hang=vzcreate), and waits until the create runs.
func hungCreate(t *testing.T, tc *testCluster, ag *testAgent, tok map[string]string, host string) appOut {
	t.Helper()
	if err := ag.sim.Store.SetFaults(pvesim.Faults{Hang: []string{"vzcreate"}}); err != nil {
		t.Fatal(err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": host}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	// A create task on the node: pct create started (and hangs, or was
	// killed since).
	waitFor(t, "the create to start", 30*time.Second, func() bool {
		started := false
		_ = ag.sim.Store.View(func(n *pvesim.Node) error {
			for _, task := range n.Tasks {
				started = started || task.Type == "vzcreate"
			}
			return nil
		})
		return started
	})
	return a
}

// assertNothingHeld checks that an app that ended in error holds nothing:
// no reservation of its hostname, no container on the node, no forward,
// and no pct create left running.
func assertNothingHeld(t *testing.T, tc *testCluster, ag *testAgent, a appOut, host string) {
	t.Helper()
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if r, held := s.ReservationByHostname(host); held {
			t.Fatalf("reservation left: %+v", r)
		}
		for _, f := range s.NodeForwards("pve1") {
			if f.App == a.ID {
				t.Fatalf("forward left: %+v", f)
			}
		}
	})
	_ = ag.sim.Store.View(func(n *pvesim.Node) error {
		for vmid, c := range n.CTs {
			t.Fatalf("container %d left on the node: %+v", vmid, c)
		}
		for _, task := range n.Tasks {
			if task.Type == "vzcreate" && task.Status == "running" {
				t.Fatalf("pct create still running: %+v", task)
			}
		}
		if strings.Contains(n.Ruleset, a.ID) {
			t.Fatalf("forward left on the node:\n%s", n.Ruleset)
		}
		return nil
	})
}

// TestHungCreateCancelledFreesReservation: a deploy stuck in a pct create
// that never ends is cancelled by its owner: the create is killed, the
// half-made container removed, the reservation freed, the app in error
// saying who cancelled it. Another user's cancel is 404; a cancel with no
// operation running is 409.
func TestHungCreateCancelledFreesReservation(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := hungCreate(t, tc, ag, tok, "stuck")
	cancel := func(token string) (int, appOut) {
		var out appOut
		code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", token, map[string]string{"action": "cancel"}, nil, &out)
		if err != nil && code == 0 {
			t.Fatal(err)
		}
		return code, out
	}
	if code, _ := cancel(tok["bob"]); code != http.StatusNotFound {
		t.Fatalf("bob cancels alice's deploy: %d", code)
	}
	if code, _ := cancel(tok["alice"]); code != http.StatusAccepted {
		t.Fatalf("cancel: %d", code)
	}
	if code, _ := cancel(tok["alice"]); code != http.StatusConflict {
		t.Fatalf("a second cancel while the undo runs: %d", code)
	}
	got := tc.waitApp(tok["alice"], a.ID, "error")
	if !strings.Contains(got.Error, "cancelled by alice") || got.VMID != 0 {
		t.Fatalf("cancelled app: %+v", got)
	}
	assertNothingHeld(t, tc, ag, a, "stuck")
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, nil, &logs)
	said := false
	for _, l := range logs.Items {
		said = said || l.Msg == "deploy cancelled by alice"
	}
	if !said {
		t.Fatalf("the log does not say who cancelled: %+v", logs.Items)
	}
	if code, _ := cancel(tok["alice"]); code != http.StatusConflict {
		t.Fatalf("cancel with no operation running: %d", code)
	}
	// The app can go: delete is no longer refused as busy.
	if code, err := tc.call(0, "DELETE", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("delete after the cancel: %d %v", code, err)
	}
}

// TestHungCreateEndsAtDeadline: the same hung create, left alone, is
// fenced at its stage's deadline on every attempt, and when attempts run
// out the deploy fails and undoes itself: error, nothing reserved.
func TestHungCreateEndsAtDeadline(t *testing.T) {
	tc, ag, tok := appClusterWith(t, apps.Policy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 2, Timeout: 2 * time.Second})
	a := hungCreate(t, tc, ag, tok, "left-alone")
	got := tc.waitApp(tok["alice"], a.ID, "error")
	if !strings.Contains(got.Error, "create failed after 2 attempt(s): timeout after 4s") {
		t.Fatalf("app past its deadline: %+v", got)
	}
	assertNothingHeld(t, tc, ag, a, "left-alone")
}

// deployRunning deploys an app of alice's and waits until it runs.
func deployRunning(t *testing.T, tc *testCluster, tok map[string]string, host string) appOut {
	t.Helper()
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": host}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	return tc.waitApp(tok["alice"], a.ID, "running")
}

// waitStep waits until app id's operation is at step.
func (tc *testCluster) waitStep(token, id, step string) {
	tc.t.Helper()
	waitFor(tc.t.(*testing.T), "step "+step, 30*time.Second, func() bool {
		var a struct{ Step string }
		_, _ = tc.call(tc.waitLeader(), "GET", "/api/v1/apps/"+id, token, nil, nil, &a)
		return a.Step == step
	})
}

// TestCancelledStopEndsWithContainerStatus: a stop whose shutdown hangs
// is cancelled; the shutdown is killed and the app ends with the status
// its container really has (still running), read on the node.
func TestCancelledStopEndsWithContainerStatus(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "steady")
	if err := ag.sim.Store.SetFaults(pvesim.Faults{Hang: []string{"vzshutdown"}}); err != nil {
		t.Fatal(err)
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("stop: %d %v", code, err)
	}
	tc.waitStep(tok["alice"], a.ID, "stop")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["admin"], map[string]string{"action": "cancel"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("cancel by an admin: %d %v", code, err)
	}
	waitFor(t, "the stop to end", 30*time.Second, func() bool {
		var x struct{ Operation, Status string }
		_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &x)
		return x.Operation == "" && x.Status == "running"
	})
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Status != "running" {
		t.Fatalf("container after the cancelled stop: %+v", c)
	}
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, nil, &logs)
	var said []string
	for _, l := range logs.Items {
		if strings.Contains(l.Msg, "cancelled by") || strings.HasPrefix(l.Msg, "settle:") {
			said = append(said, l.Msg)
		}
	}
	if len(said) < 2 || said[0] != "stop cancelled by admin" || !strings.Contains(said[len(said)-1], "the container is running") {
		t.Fatalf("the log of the cancelled stop: %q", said)
	}
}

// TestCancelledBackupMarkedFailed: a backup that takes long is cancelled;
// the app keeps its status and the backup is failed, saying who
// cancelled it.
func TestCancelledBackupMarkedFailed(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "saved")
	if err := ag.sim.Store.SetFaults(pvesim.Faults{TaskMS: 20_000}); err != nil {
		t.Fatal(err)
	}
	var b struct{ ID, Status string }
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, &b); err != nil || code != 202 {
		t.Fatalf("backup: %d %v", code, err)
	}
	tc.waitStep(tok["alice"], a.ID, "backup")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "cancel"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("cancel: %d %v", code, err)
	}
	if err := ag.sim.Store.SetFaults(pvesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	got := tc.waitApp(tok["alice"], a.ID, "running")
	if got.Error != "" {
		t.Fatalf("the app after a cancelled backup: %+v", got)
	}
	var list struct {
		Items []struct{ ID, Status, Error string }
	}
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != b.ID || list.Items[0].Status != "failed" || list.Items[0].Error != "backup cancelled by alice" {
		t.Fatalf("backups after the cancel: %+v", list.Items)
	}
}

// TestCancelledUpdateRollsBack: an update whose pull keeps failing (and
// would retry for long) is cancelled after its backup: the rollback puts
// the pre-update backup back and the app runs as before, its error saying
// who cancelled the update.
func TestCancelledUpdateRollsBack(t *testing.T) {
	tc, ag, tok := appClusterWith(t, apps.Policy{Base: 200 * time.Millisecond, Max: time.Second, Attempts: 1000})
	a := deployRunning(t, tc, tok, "updated")
	if err := ag.sim.Store.Update(func(n *pvesim.Node) error {
		n.CTs[a.VMID].Files["/var/lib/pvesim/fail-pull"] = "Error response from daemon: manifest unknown"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	offerVersion(t, tc, "homepage", "99.0.0", "")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/update", tok["alice"], nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("update: %d %v", code, err)
	}
	tc.waitStep(tok["alice"], a.ID, "pull")
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "cancel"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("cancel: %d %v", code, err)
	}
	waitFor(t, "the rollback", 60*time.Second, func() bool {
		var x struct{ Operation, Status, Error string }
		_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &x)
		return x.Operation == "" && x.Status == "running" && x.Error == "update cancelled by alice"
	})
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, nil, &logs)
	rolledBack := false
	for _, l := range logs.Items {
		rolledBack = rolledBack || strings.HasPrefix(l.Msg, "rollback: done")
	}
	if !rolledBack {
		t.Fatalf("no rollback in the log: %+v", logs.Items)
	}
	if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Status != "running" {
		t.Fatalf("container after the rollback: %+v", c)
	}
}
