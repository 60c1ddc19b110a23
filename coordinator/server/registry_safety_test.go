package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// TestReservationOwnedByAppCannotBeDeleted protects the finding "an admin
// released a running app's reservation with `reservations delete`; its
// hostname and port were handed out again": DELETE of an app's reservation
// is 409 naming the app by hostname and id, and the app keeps its
// hostname, VMID and ports.
func TestReservationOwnedByAppCannotBeDeleted(t *testing.T) {
	tc, _, tok := appCluster(t)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "uptime-kuma", "hostname": "kuma"}, nil, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	var rsv fsm.Reservation
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { rsv, _ = s.ReservationByHostname("kuma") })
	if rsv.ID == "" {
		t.Fatal("the app holds no reservation")
	}
	st, h, body := tc.raw(0, "DELETE", "/api/v1/reservations/"+rsv.ID, tc.token, "", nil)
	p := assertProblem(t, st, h, body, http.StatusConflict)
	if !strings.Contains(p.Detail, a.ID) || !strings.Contains(p.Detail, "kuma") {
		t.Fatalf("409 does not name the app by hostname and id: %q", p.Detail)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		got, ok := s.Reservation(rsv.ID)
		if !ok || got.VMID != a.VMID || len(got.PublicPorts) != len(a.PublicPorts) || got.PublicPorts[0] != a.PublicPorts[0] {
			t.Fatalf("the app's reservation after a refused delete: %+v (held %v)", got, ok)
		}
	})
	// The hostname is not handed out again.
	if code, _ := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "kuma", "node": "pve1"}, nil, nil); code != http.StatusConflict {
		t.Fatalf("reserving the app's hostname: %d, want 409", code)
	}
	// Nobody can make a reservation that looks like an app's.
	if code, _ := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "fake", "node": "pve1", "owner": "app:" + a.ID}, nil, nil); code != http.StatusBadRequest {
		t.Fatalf("a reservation with an app's owner: %d, want 400", code)
	}
	if _, a2 := tc.appStatus(tok["alice"], a.ID); a2.Status != "running" {
		t.Fatalf("the app after a refused delete: %+v", a2)
	}
}
