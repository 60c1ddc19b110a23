package server

import (
	"net/http"
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

	// A container that is gone: the adoption ends in error, with the reason.
	if err := ag.sim.Store.Take(701, false); err != nil {
		t.Fatal(err)
	}
	_ = ag.sim.Store.Update(func(n *pvesim.Node) error { delete(n.CTs, 701); return nil })
	var b appOut
	if code, err := tc.call(0, "POST", "/api/v1/adopt", tok["admin"], map[string]any{"node": "pve1", "vmid": 701, "owner": owner, "hostname": "ghost", "port": 80}, nil, &b); err != nil || code != 202 {
		t.Fatalf("adopt ghost: %d %v", code, err)
	}
	b = tc.waitApp(tok["alice"], b.ID, "error")
	if !strings.Contains(b.Error, "does not exist") {
		t.Fatalf("ghost adoption's error: %+v", b)
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
