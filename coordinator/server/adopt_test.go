package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

type discovered struct {
	Items []struct {
		Node   string
		VMID   int
		Name   string
		Status string
	}
}

// TestAuditFindings12And18DiscoverAndAdopt: discovery lists containers
// made by hand; adoption validates its port, takes the container's VMID
// (foreign until then), and ends running; adopting a container that is
// gone ends in error with the reason in the log; deleting an adopted app
// releases it and leaves the container.
func TestAuditFindings12And18DiscoverAndAdopt(t *testing.T) {
	tc, ag, tok := appCluster(t)
	if err := ag.sim.Store.Take(700, false); err != nil {
		t.Fatal(err)
	}
	var d discovered
	waitFor(t, "discovery", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/discover", tok["admin"], nil, nil, &d)
		return len(d.Items) == 1 && d.Items[0].VMID == 700
	})
	if code, _ := tc.call(0, "GET", "/api/v1/discover", tok["alice"], nil, nil, nil); code != http.StatusForbidden {
		t.Fatalf("discover as a user: %d", code)
	}
	var alice struct{ Items []struct{ ID, Name string } }
	_, _ = tc.call(0, "GET", "/api/v1/users", tok["admin"], nil, nil, &alice)
	owner := ""
	for _, u := range alice.Items {
		if u.Name == "alice" {
			owner = u.ID
		}
	}
	for _, port := range []int{0, 70000, -1} {
		if code, _ := tc.call(0, "POST", "/api/v1/adopt", tok["admin"], map[string]any{"node": "pve1", "vmid": 700, "owner": owner, "hostname": "legacy", "port": port}, nil, nil); code != http.StatusBadRequest {
			t.Fatalf("adopt with port %d: %d", port, code)
		}
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/adopt", tok["admin"], map[string]any{"node": "pve1", "vmid": 700, "owner": owner, "hostname": "legacy", "port": 8080}, nil, &a); err != nil || code != 202 {
		t.Fatalf("adopt: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "stopped")
	if a.VMID != 700 {
		t.Fatalf("adopted app: %+v", a)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if s.IsForeign(700) || !s.ReservedVMID(700) {
			t.Fatalf("VMID 700 after adoption: foreign %v reserved %v", s.IsForeign(700), s.ReservedVMID(700))
		}
	})
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "start"}, nil, nil); code != 202 {
		t.Fatalf("start adopted: %d", code)
	}
	tc.waitApp(tok["alice"], a.ID, "running")

	// A container that is gone after the node reported it: the adoption
	// is refused (404) if a newer inventory came first, otherwise it ends
	// in error with the reason. It never ends running.
	if err := ag.sim.Store.Take(701, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "discovery of 701", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/discover", tok["admin"], nil, nil, &d)
		for _, it := range d.Items {
			if it.VMID == 701 {
				return true
			}
		}
		return false
	})
	_ = ag.sim.Store.Update(func(n *pvesim.Node) error { delete(n.CTs, 701); return nil })
	var b appOut
	switch code, err := tc.call(0, "POST", "/api/v1/adopt", tok["admin"], map[string]any{"node": "pve1", "vmid": 701, "owner": owner, "hostname": "ghost", "port": 80}, nil, &b); {
	case err == nil && code == http.StatusNotFound:
	case err == nil && code == http.StatusAccepted:
		b = tc.waitApp(tok["alice"], b.ID, "error")
		if !strings.Contains(b.Error, "does not exist") {
			t.Fatalf("ghost adoption's error: %+v", b)
		}
	default:
		t.Fatalf("adopt ghost: %d %v", code, err)
	}

	// Deleting an adopted app releases it; the container stays.
	if code, _ := tc.call(0, "DELETE", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, nil); code != 202 {
		t.Fatalf("delete adopted: %d", code)
	}
	waitFor(t, "released", 20*time.Second, func() bool {
		code, _ := tc.appStatus(tok["alice"], a.ID)
		return code == http.StatusNotFound
	})
	if c := ct(t, ag.sim.Store, 700); c == nil {
		t.Fatal("deleting an adopted app destroyed its container")
	}
}

// adoptRefused asks to adopt vmid on pve1 and checks the refusal: the
// status, the VMID and the node in the detail, and nothing reserved, no
// app and no task made.
func adoptRefused(t *testing.T, tc *testCluster, admin, owner string, vmid, want int) {
	t.Helper()
	count := func() (apps, rsv, tasks int) {
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
			apps, rsv, tasks = len(s.Apps), len(s.Reservations), len(s.Tasks)
		})
		return
	}
	a0, r0, t0 := count()
	body := map[string]any{"node": "pve1", "vmid": vmid, "owner": owner, "hostname": "legacy-" + strconv.Itoa(vmid), "port": 80}
	raw, _ := json.Marshal(body)
	st, h, b := tc.raw(0, "POST", "/api/v1/adopt", admin, string(raw), nil)
	p := assertProblem(t, st, h, b, want)
	if !strings.Contains(p.Detail, strconv.Itoa(vmid)) || !strings.Contains(p.Detail, "pve1") {
		t.Fatalf("refusal does not name VMID %d and the node: %q", vmid, p.Detail)
	}
	if a1, r1, t1 := count(); a1 != a0 || r1 != r0 || t1 != t0 {
		t.Fatalf("a refused adoption changed state: apps %d→%d, reservations %d→%d, tasks %d→%d", a0, a1, r0, r1, t0, t1)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if _, ok := s.ReservationByHostname("legacy-" + strconv.Itoa(vmid)); ok {
			t.Fatalf("a refused adoption holds its hostname")
		}
	})
}

// TestAdoptOfVMRefusedBeforeReserving protects the finding "`adopt pve1
// 501` (a VM) and `adopt pve1 777` (nothing) answered 202, retried 5 times,
// and kept their port and hostname": both are refused by the node's last
// inventory, naming the VMID and the node, before anything is reserved.
func TestAdoptOfVMRefusedBeforeReserving(t *testing.T) {
	tc, ag, tok := appCluster(t)
	if err := ag.sim.Store.Take(501, true); err != nil {
		t.Fatal(err)
	}
	owner := userID(t, tc, "alice")
	// Wait for an inventory that carries the VM.
	waitFor(t, "inventory with VM 501", 10*time.Second, func() bool {
		li, ok := tc.leaderServer().agents.NodeLive("pve1")
		return ok && li.VMIDs[501]
	})
	adoptRefused(t, tc, tok["admin"], owner, 501, http.StatusConflict)
	adoptRefused(t, tc, tok["admin"], owner, 777, http.StatusNotFound)
}

// TestAdoptBeforeInventoryRefusedWithRetry: a node that has not reported
// its containers yet cannot be checked, so the adoption is 503 (retry)
// and reserves nothing.
func TestAdoptBeforeInventoryRefusedWithRetry(t *testing.T) {
	tc, _, tok := appCluster(t)
	owner := userID(t, tc, "alice")
	// pve2 is enrolled, but no agent ever reports for it.
	tc.enrolNode(t, "pve2")
	body, _ := json.Marshal(map[string]any{"node": "pve2", "vmid": 700, "owner": owner, "hostname": "early", "port": 80})
	st, h, b := tc.raw(0, "POST", "/api/v1/adopt", tok["admin"], string(body), nil)
	p := assertProblem(t, st, h, b, http.StatusServiceUnavailable)
	if !strings.Contains(p.Detail, "pve2") {
		t.Fatalf("503 does not name the node: %q", p.Detail)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if _, ok := s.ReservationByHostname("early"); ok {
			t.Fatal("a refused adoption holds its hostname")
		}
	})
}

// userID returns the id of the user named name.
func userID(t *testing.T, tc *testCluster, name string) string {
	t.Helper()
	var us struct{ Items []struct{ ID, Name string } }
	if _, err := tc.call(0, "GET", "/api/v1/users", tc.token, nil, nil, &us); err != nil {
		t.Fatal(err)
	}
	for _, u := range us.Items {
		if u.Name == name {
			return u.ID
		}
	}
	t.Fatalf("no user %s", name)
	return ""
}

// enrolNode enrols a node through Raft without an agent: it never reports.
func (tc *testCluster) enrolNode(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hash := strings.Repeat("e", 64)
	now := time.Now()
	for _, c := range []fsm.Command{
		{Type: fsm.CmdJoinToken, RequestID: "enrol-token-" + name, JoinToken: &fsm.JoinToken{ID: "jt-" + name, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}},
		{Type: fsm.CmdJoinNode, RequestID: "enrol-" + name, JoinNode: &fsm.JoinNodeCmd{TokenHash: hash, Node: name, At: now}},
	} {
		res, err := tc.leaderServer().Cluster().Propose(ctx, c)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Fatalf("enrol %s: %v", name, err)
		}
	}
}
