package fsm

import (
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// TestReservationOwnedByAppCannotBeReleased protects the finding "an admin
// released a running app's reservation; its hostname and port were handed
// out again": the release command refuses a reservation that an app holds,
// naming the app, and changes nothing; the app's own lifecycle (its
// removal) still frees it, and a reservation of another owner is released.
func TestReservationOwnedByAppCannotBeReleased(t *testing.T) {
	f := quotaFSM(t, nil, nil)
	app := mustOK(t, apply(t, f, createAppCmd("a1", "alice", "web", catalog.Resources{Cores: 1, MemoryMB: 256, DiskGB: 1}))[0]).App
	r := apply(t, f, releaseCmd("rel", app.ReservationID))[0]
	mustKind(t, r, problem.Conflict)
	if !strings.Contains(r.ErrDetail, app.ID) || !strings.Contains(r.ErrDetail, "web") {
		t.Fatalf("refusal does not name the app by id and hostname: %q", r.ErrDetail)
	}
	f.Read(func(s *State) {
		if _, ok := s.Reservation(app.ReservationID); !ok {
			t.Fatal("the app's reservation is gone after a refused release")
		}
		if _, ok := s.ReservationByHostname("web"); !ok {
			t.Fatal("the app's hostname is free after a refused release")
		}
	})
	// The same hostname cannot be reserved again.
	mustKind(t, apply(t, f, reserveCmd("again", "x", "web", "pve1", 1, false))[0], problem.Conflict)

	// The app's own lifecycle frees it.
	mustOK(t, apply(t, f, Command{Type: CmdRemoveApp, RequestID: "rm", RemoveApp: &RemoveAppCmd{ID: app.ID}})[0])
	f.Read(func(s *State) {
		if _, ok := s.Reservation(app.ReservationID); ok {
			t.Fatal("removing the app did not free its reservation")
		}
	})
	// Another owner's reservation is released as before.
	mustOK(t, apply(t, f, reserveCmd("r2", "ext", "other", "pve1", 1, false))[0])
	mustOK(t, apply(t, f, releaseCmd("rel2", "ext"))[0])
}
