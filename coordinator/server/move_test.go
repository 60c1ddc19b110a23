package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// moveCluster is threeNodeCluster with a shared backup storage "nfs" on
// pve1 and pve2 (one directory both simulated nodes reach) and none on
// pve3, and an app of alice's deployed on pve1 and running. It returns
// the nodes' simulator stores by name.
func moveCluster(t *testing.T) (*testCluster, string, map[string]*pvesim.Store, appOut) {
	tc, tok := threeNodeCluster(t)
	stores := map[string]*pvesim.Store{}
	shared := filepath.Join(tc.dir, "nfs")
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		st, err := pvesim.Open(filepath.Join(tc.dir, n, "pvesim"), n)
		if err != nil {
			t.Fatal(err)
		}
		stores[n] = st
		if n == "pve3" {
			continue
		}
		if err := st.Update(func(node *pvesim.Node) error {
			node.Storages = append(node.Storages, pvesim.Storage{ID: "nfs", Type: "nfs", Content: []string{"backup"}, Path: shared, Shared: true})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "nfs reported", 20*time.Second, func() bool {
		for _, n := range []string{"pve1", "pve2"} {
			li, ok := tc.leaderServer().Agents().NodeLive(n)
			found := false
			for _, st := range li.Storages {
				found = found || (ok && st.Name == "nfs" && st.Shared)
			}
			if !found {
				return false
			}
		}
		return true
	})
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok, map[string]any{"catalog_id": "uptime-kuma", "hostname": "kuma", "node": "pve1"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	return tc, tok, stores, tc.waitApp(tok, a.ID, "running")
}

// backupOn makes a backup of app on storage and waits until it is ready.
func (tc *testCluster) backupOn(t *testing.T, token, app, storage string) backupOut {
	t.Helper()
	if code, err := tc.call(0, "PATCH", "/api/v1/settings/resources", tc.token, map[string]any{"backup_storage": storage}, nil, nil); err != nil || code != 200 {
		t.Fatalf("backup storage %s: %d %v", storage, code, err)
	}
	var b backupOut
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+app+"/backups", token, nil, nil, &b); err != nil || code != 202 {
		t.Fatalf("backup: %d %v", code, err)
	}
	waitFor(t, "backup ready", 30*time.Second, func() bool {
		for _, x := range tc.backups(token, app) {
			if x.ID == b.ID && x.Status == "ready" {
				b = x
				return true
			}
		}
		return false
	})
	tc.waitApp(token, app, "running")
	return b
}

func registry(tc *testCluster) map[string]fsm.Reservation {
	out := map[string]fsm.Reservation{}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		for id, r := range s.Reservations {
			out[id] = *r
		}
	})
	return out
}

func ruleset(st *pvesim.Store) string {
	var r string
	_ = st.View(func(n *pvesim.Node) error { r = n.Ruleset; return nil })
	return r
}

func problemDetail(t *testing.T, tc *testCluster, token, path string, body any) (int, string) {
	t.Helper()
	var p struct{ Detail string }
	code, _ := tc.call(0, "POST", path, token, body, nil, &p)
	return code, p.Detail
}

// TestMoveAppToAnotherNode: an app restored from a backup on a shared
// storage onto another node ends there, under a new VMID, with ports on
// the new node and its hostname, its old container gone, its old VMID
// and ports free and each node's forwards right; a backup the target
// cannot read is refused with 409 naming its storage, reserving nothing;
// a second operation during the move is 409.
func TestMoveAppToAnotherNode(t *testing.T) {
	tc, tok, stores, a := moveCluster(t)
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok, a.ID)
		}
	}()
	restore := func(bid string) string { return "/api/v1/apps/" + a.ID + "/backups/" + bid + "/restore" }

	// A backup on "local" (not shared) cannot be read from pve2.
	local := tc.backupOn(t, tok, a.ID, "local")
	before := registry(tc)
	if code, detail := problemDetail(t, tc, tok, restore(local.ID), map[string]any{"node": "pve2"}); code != http.StatusConflict || !strings.Contains(detail, `"local"`) {
		t.Fatalf("move of a backup on local: %d %q", code, detail)
	}
	if after := registry(tc); len(after) != len(before) {
		t.Fatalf("a refused move reserved something: %d reservations, %d before", len(after), len(before))
	}
	// A backup on "nfs" cannot be read from pve3, which has no such storage.
	nfs := tc.backupOn(t, tok, a.ID, "nfs")
	if !strings.HasPrefix(nfs.Volid, "nfs:backup/") {
		t.Fatalf("backup: %+v", nfs)
	}
	before = registry(tc)
	if code, detail := problemDetail(t, tc, tok, restore(nfs.ID), map[string]any{"node": "pve3"}); code != http.StatusConflict || !strings.Contains(detail, `"nfs"`) {
		t.Fatalf("move to a node without the storage: %d %q", code, detail)
	}
	if after := registry(tc); len(after) != len(before) {
		t.Fatalf("a refused move reserved something: %d reservations, %d before", len(after), len(before))
	}
	if code, _ := problemDetail(t, tc, tok, restore(nfs.ID), map[string]any{"node": "pve1; rm"}); code != http.StatusBadRequest {
		t.Fatalf("bad node name: %d", code)
	}

	// The move, slowed on the target so that it is seen in progress.
	if err := stores["pve2"].SetFaults(pvesim.Faults{TaskMS: 300}); err != nil {
		t.Fatal(err)
	}
	var m appOut
	if code, err := tc.call(0, "POST", restore(nfs.ID), tok, map[string]any{"node": "pve2"}, nil, &m); err != nil || code != 202 || m.Status != "moving" {
		t.Fatalf("move: %d %v %+v", code, err, m)
	}
	if code, detail := problemDetail(t, tc, tok, restore(nfs.ID), map[string]any{"node": "pve2"}); code != http.StatusConflict || !strings.Contains(detail, "busy") {
		t.Fatalf("second move while one runs: %d %q", code, detail)
	}
	if code, _ := problemDetail(t, tc, tok, "/api/v1/apps/"+a.ID+"/backups", nil); code != http.StatusConflict {
		t.Fatalf("backup during a move: %d", code)
	}
	// Meanwhile the app holds two reservations; the new one shares its
	// hostname without holding it.
	var standby fsm.Reservation
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		x, _ := s.App(a.ID)
		standby, _ = s.Reservation(x.OpArgs[fsm.ArgMoveReservation])
		if r, ok := s.ReservationByHostname("kuma"); !ok || r.Node != "pve1" {
			t.Errorf("the hostname is held by %+v, not the app's own reservation", r)
		}
	})
	if standby.Node != "pve2" || standby.VMID == a.VMID || !standby.Standby || len(standby.PublicPorts) != 1 {
		t.Fatalf("the new container's reservation: %+v", standby)
	}
	_ = stores["pve2"].SetFaults(pvesim.Faults{})

	moved := tc.waitApp(tok, a.ID, "running")
	if moved.Node != "pve2" || moved.VMID != standby.VMID || moved.Hostname != "kuma" || fmt.Sprint(moved.PublicPorts) != fmt.Sprint(standby.PublicPorts) || moved.Error != "" {
		t.Fatalf("app after the move: %+v (was %+v)", moved, a)
	}
	if c := ct(t, stores["pve2"], moved.VMID); c == nil || c.Status != "running" || c.Config["hostname"] != "kuma" {
		t.Fatalf("new container: %+v", c)
	}
	if c := ct(t, stores["pve1"], a.VMID); c != nil {
		t.Fatalf("old container left on pve1: %+v", c)
	}
	regs := registry(tc)
	for _, r := range regs {
		if r.VMID == a.VMID || (r.Node == "pve1" && fmt.Sprint(r.PublicPorts) == fmt.Sprint(a.PublicPorts)) || r.Standby {
			t.Fatalf("old VMID or ports still reserved: %+v", r)
		}
	}
	if len(regs) != len(before) {
		t.Fatalf("%d reservations after the move, %d before", len(regs), len(before))
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if r, ok := s.ReservationByHostname("kuma"); !ok || r.Node != "pve2" || r.VMID != moved.VMID {
			t.Errorf("hostname held by %+v", r)
		}
	})
	if r := ruleset(stores["pve1"]); strings.Contains(r, a.ID) {
		t.Fatalf("forward left on pve1:\n%s", r)
	}
	if r := ruleset(stores["pve2"]); !strings.Contains(r, fmt.Sprintf("tcp dport %d dnat to ", moved.PublicPorts[0])) || !strings.Contains(r, a.ID) {
		t.Fatalf("forwards on pve2:\n%s", r)
	}
	// The backup on pve1's local storage cannot be restored in place on
	// pve2 either; deleting it removes the archive on pve1, where it is.
	if code, detail := problemDetail(t, tc, tok, restore(local.ID), nil); code != http.StatusConflict || !strings.Contains(detail, `"local"`) {
		t.Fatalf("in-place restore of a backup left on pve1: %d %q", code, detail)
	}
	if code, err := tc.call(0, "DELETE", "/api/v1/apps/"+a.ID+"/backups/"+local.ID, tok, nil, nil, nil); err != nil || code != 202 {
		t.Fatalf("delete of the backup on pve1: %d %v", code, err)
	}
	waitFor(t, "backup deleted", 20*time.Second, func() bool {
		for _, x := range tc.backups(tok, a.ID) {
			if x.ID == local.ID {
				return false
			}
		}
		return true
	})
	_ = stores["pve1"].View(func(n *pvesim.Node) error {
		for _, b := range n.Backups {
			if b.Volid == local.Volid {
				t.Errorf("archive %s left on pve1 after its backup was deleted", b.Volid)
			}
		}
		return nil
	})
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=100", tok, nil, nil, &logs)
	var all []string
	for _, l := range logs.Items {
		all = append(all, l.Msg)
	}
	for _, want := range []string{"restore: done", "health: done", "switch: the app is now CT", "destroy-old: done", "move: done"} {
		if !strings.Contains(strings.Join(all, "\n"), want) {
			t.Fatalf("log lacks %q:\n%s", want, strings.Join(all, "\n"))
		}
	}
}

// TestMoveWithFailingHealthCheckLeavesAppInPlace: a move whose new
// container never passes its health check ends with the app running where
// it was, as it was, and nothing left on the target: no container, no
// forwards, no reservation.
func TestMoveWithFailingHealthCheckLeavesAppInPlace(t *testing.T) {
	tc, tok, stores, a := moveCluster(t)
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok, a.ID)
		}
	}()
	// The marker goes into the backup with the container's files: a stack
	// brought up from it publishes nothing (the old one is up already).
	if err := stores["pve1"].Update(func(n *pvesim.Node) error {
		f := n.CTs[a.VMID].Files
		f["/opt/proximity/app/.env"] += "PVESIM_BROKEN=1\n"
		f["/var/lib/pvesim/unhealthy-env"] = "PVESIM_BROKEN=1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := tc.backupOn(t, tok, a.ID, "nfs")
	before := registry(tc)
	rules := ruleset(stores["pve1"])
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups/"+b.ID+"/restore", tok, map[string]any{"node": "pve2"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("move: %d %v", code, err)
	}
	var after appOut
	waitFor(t, "move undone", 60*time.Second, func() bool {
		_, after = tc.appStatus(tok, a.ID)
		return after.Status == "running" && strings.Contains(after.Error, "move failed")
	})
	if after.Node != "pve1" || after.VMID != a.VMID || fmt.Sprint(after.PublicPorts) != fmt.Sprint(a.PublicPorts) || !strings.Contains(after.Error, "health") {
		t.Fatalf("app after a failed move: %+v (was %+v)", after, a)
	}
	if c := ct(t, stores["pve1"], a.VMID); c == nil || c.Status != "running" {
		t.Fatalf("old container: %+v", c)
	}
	_ = stores["pve2"].View(func(n *pvesim.Node) error {
		for vmid, c := range n.CTs {
			t.Errorf("container %d left on pve2: %+v", vmid, c.Config["hostname"])
		}
		if strings.Contains(n.Ruleset, a.ID) {
			t.Errorf("forward left on pve2:\n%s", n.Ruleset)
		}
		return nil
	})
	if r := ruleset(stores["pve1"]); r != rules || !strings.Contains(r, a.ID) {
		t.Fatalf("pve1's forwards changed:\n%s\nwas\n%s", r, rules)
	}
	if regs := registry(tc); len(regs) != len(before) {
		t.Fatalf("%d reservations after the failed move, %d before: %+v", len(regs), len(before), regs)
	}
}

// TestMoveCancelledLeavesAppInPlace: a move cancelled while its new
// container is being made ends with the app running where it was, the
// cancel in its error, and nothing left on the target.
func TestMoveCancelledLeavesAppInPlace(t *testing.T) {
	tc, tok, stores, a := moveCluster(t)
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok, a.ID)
		}
	}()
	b := tc.backupOn(t, tok, a.ID, "nfs")
	before := registry(tc)
	if err := stores["pve2"].SetFaults(pvesim.Faults{TaskMS: 1500}); err != nil {
		t.Fatal(err)
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups/"+b.ID+"/restore", tok, map[string]any{"node": "pve2"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("move: %d %v", code, err)
	}
	waitFor(t, "restore under way", 20*time.Second, func() bool {
		var x fsm.App
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { x, _ = s.App(a.ID) })
		return x.Status == fsm.AppMoving && x.Step == "restore" && x.TaskID != ""
	})
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok, map[string]any{"action": "cancel"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("cancel: %d %v", code, err)
	}
	_ = stores["pve2"].SetFaults(pvesim.Faults{})
	var after appOut
	waitFor(t, "move undone", 60*time.Second, func() bool {
		_, after = tc.appStatus(tok, a.ID)
		return after.Status == "running" && strings.Contains(after.Error, "cancelled")
	})
	if after.Node != "pve1" || after.VMID != a.VMID {
		t.Fatalf("app after a cancelled move: %+v", after)
	}
	if c := ct(t, stores["pve1"], a.VMID); c == nil || c.Status != "running" {
		t.Fatalf("old container: %+v", c)
	}
	// The restore runs to its end on the node (it is not killed): its
	// container goes once it has.
	waitFor(t, "nothing left on pve2", 20*time.Second, func() bool {
		n := -1
		_ = stores["pve2"].View(func(nd *pvesim.Node) error { n = len(nd.CTs); return nil })
		return n == 0
	})
	if regs := registry(tc); len(regs) != len(before) {
		t.Fatalf("%d reservations after the cancelled move, %d before", len(regs), len(before))
	}
}

// TestMoveUndoThatCannotRemoveTheNewContainerSaysSo: when the undo of a
// failed move cannot destroy the new container, the app still stays where
// it was, its error names the container to remove by hand, the new
// reservation is freed, and the VMID, which the node still reports, is
// marked foreign so that no reservation takes it.
func TestMoveUndoThatCannotRemoveTheNewContainerSaysSo(t *testing.T) {
	tc, tok, stores, a := moveCluster(t)
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok, a.ID)
		}
	}()
	if err := stores["pve1"].Update(func(n *pvesim.Node) error {
		f := n.CTs[a.VMID].Files
		f["/opt/proximity/app/.env"] += "PVESIM_BROKEN=1\n"
		f["/var/lib/pvesim/unhealthy-env"] = "PVESIM_BROKEN=1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := tc.backupOn(t, tok, a.ID, "nfs")
	if err := stores["pve2"].SetFaults(pvesim.Faults{Fail: []string{"vzdestroy"}}); err != nil {
		t.Fatal(err)
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups/"+b.ID+"/restore", tok, map[string]any{"node": "pve2"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("move: %d %v", code, err)
	}
	var after appOut
	waitFor(t, "move undone", 60*time.Second, func() bool {
		_, after = tc.appStatus(tok, a.ID)
		return after.Status == "running" && strings.Contains(after.Error, "move failed")
	})
	var left int
	_ = stores["pve2"].View(func(n *pvesim.Node) error {
		for vmid := range n.CTs {
			left = vmid
		}
		return nil
	})
	if after.Node != "pve1" || after.VMID != a.VMID || left == 0 || !strings.Contains(after.Error, fmt.Sprintf("CT %d on pve2 could not be removed", left)) || !strings.Contains(after.Error, "by hand") {
		t.Fatalf("app after the undo: %+v (CT %d left on pve2)", after, left)
	}
	waitFor(t, "left VMID marked foreign", 20*time.Second, func() bool {
		var foreign, reserved bool
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { foreign, reserved = s.IsForeign(left), s.ReservedVMID(left) })
		return foreign && !reserved
	})
}
