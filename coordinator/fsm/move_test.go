package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// TestMoveHoldsTwoReservationsAndOneHostname: while an app is moved it
// holds its own reservation and a standby one (another VMID, ports on the
// target, another address) that shares its hostname without holding it;
// the standby cannot be released behind the app's back, survives a
// snapshot with the hostname still the app's own, and the switch hands the
// hostname over before the end frees the old VMID, ports and address.
func TestMoveHoldsTwoReservationsAndOneHostname(t *testing.T) {
	f := New(0)
	for _, c := range []Command{
		{Type: CmdSetCatalog, RequestID: "cat", SetCatalog: &CatalogState{Entries: []catalog.Entry{{
			ID: "web", Name: "Web", Version: "1", Ports: []catalog.Port{{Name: "http", Internal: 8080, Protocol: "tcp"}}}}}},
		{Type: CmdSetNetwork, RequestID: "n", SetNetwork: &NetworkSettings{Subnet: "10.20.0.0/24", Gateway: "10.20.0.1"}},
		{Type: CmdJoinToken, RequestID: "t1", JoinToken: &JoinToken{ID: "jt1", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
		{Type: CmdJoinNode, RequestID: "j1", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}},
		{Type: CmdJoinToken, RequestID: "t2", JoinToken: &JoinToken{ID: "jt2", Hash: hash64('b'), ExpiresAt: t0.Add(time.Hour)}},
		{Type: CmdJoinNode, RequestID: "j2", JoinNode: &JoinNodeCmd{TokenHash: hash64('b'), Node: "pve2", At: t0}},
		{Type: CmdCreateApp, RequestID: "app", CreateApp: &CreateAppCmd{
			App:     App{ID: "app1", Owner: "alice", CatalogID: "web", CreatedAt: t0},
			Reserve: ReserveCmd{ID: "res1", Hostname: "web1", Node: "pve1", PublicPorts: 1, IP: true, Owner: "app:app1", CreatedAt: t0}}},
		{Type: CmdAppStep, RequestID: "deployed", AppStep: &AppStepCmd{ID: "app1", ExpectOp: OpDeploy, Done: true, Status: AppRunning, At: t0}},
		{Type: CmdAppAction, RequestID: "backup", AppAction: &AppActionCmd{ID: "app1", Op: OpBackup, BackupID: "bak1", At: t0}},
		{Type: CmdAppStep, RequestID: "backed-up", AppStep: &AppStepCmd{ID: "app1", ExpectOp: OpBackup, Done: true, Status: AppRunning,
			Backup: &Backup{ID: "bak1", Status: BackupReady, Volid: "nfs:backup/vzdump-lxc-10000.tar.zst"}, At: t0}},
	} {
		mustOK(t, apply(t, f, c)[0])
	}
	var old App
	f.Read(func(s *State) { old, _ = s.App("app1") })

	move := func(rid, node string) Result {
		return apply(t, f, Command{Type: CmdMoveApp, RequestID: rid, MoveApp: &MoveAppCmd{ID: "app1", BackupID: "bak1", Node: node, At: t0,
			Reserve: ReserveCmd{ID: "res-" + rid, IP: true, Owner: "app:app1", CreatedAt: t0}}})[0]
	}
	if r := move("same", "pve1"); r.ErrKind != problem.Invalid {
		t.Fatalf("move onto its own node: %+v", r)
	}
	if r := move("nowhere", "pve9"); r.ErrKind != problem.NotFound {
		t.Fatalf("move onto a node not enrolled: %+v", r)
	}
	a := *mustOK(t, move("m", "pve2")).App
	if a.Op != OpMove || a.Status != AppMoving || a.Node != "pve1" || a.OpArgs[ArgMoveNode] != "pve2" {
		t.Fatalf("app after MoveApp: %+v", a)
	}
	if r := move("again", "pve2"); r.ErrKind != problem.Conflict {
		t.Fatalf("a second move while one runs: %+v", r)
	}
	standby := a.OpArgs[ArgMoveReservation]
	check := func(f *FSM, holder string) {
		t.Helper()
		f.Read(func(s *State) {
			if r, ok := s.ReservationByHostname("web1"); !ok || r.ID != holder {
				t.Fatalf("hostname held by %+v, want %s", r, holder)
			}
		})
	}
	var nr Reservation
	f.Read(func(s *State) { nr, _ = s.Reservation(standby) })
	if !nr.Standby || nr.Node != "pve2" || nr.VMID == old.VMID || nr.IP == "" || nr.IP == old.IP || len(nr.PublicPorts) != 1 || nr.Hostname != "web1" {
		t.Fatalf("standby reservation: %+v (app %+v)", nr, old)
	}
	check(f, "res1")
	if r := apply(t, f, Command{Type: CmdRelease, RequestID: "rel", Release: &ReleaseCmd{ID: standby}})[0]; r.ErrKind != problem.Conflict {
		t.Fatalf("release of the standby reservation: %+v", r)
	}
	if r := apply(t, f, Command{Type: CmdReserve, RequestID: "steal", Reserve: &ReserveCmd{ID: "x", Hostname: "web1", Node: "pve2", Owner: "bob"}})[0]; r.ErrKind != problem.Conflict {
		t.Fatalf("another reservation of the hostname: %+v", r)
	}

	// A snapshot restored (indexes rebuilt) keeps the hostname the app's own.
	snap, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	check(g, "res1")

	// The switch: the new reservation holds the hostname, the app names the
	// new container, and the old one is the standby.
	a = *mustOK(t, apply(t, f, Command{Type: CmdMoveStep, RequestID: "switch", MoveStep: &MoveStepCmd{Switch: true,
		Step: AppStepCmd{ID: "app1", ExpectOp: OpMove, Step: "forward-old", Attempt: 1, At: t0}}})[0]).App
	if a.Node != "pve2" || a.VMID != nr.VMID || a.IP != nr.IP || a.ReservationID != standby || a.OpArgs[ArgMoveReservation] != "res1" || a.OpArgs[ArgMoveNode] != "pve1" {
		t.Fatalf("app after the switch: %+v", a)
	}
	check(f, standby)
	if r := apply(t, f, Command{Type: CmdCancelApp, RequestID: "cancel", CancelApp: &CancelAppCmd{ID: "app1", By: "alice", At: t0}})[0]; r.ErrKind != problem.Conflict {
		t.Fatalf("cancel after the switch: %+v", r)
	}
	a = *mustOK(t, apply(t, f, Command{Type: CmdMoveStep, RequestID: "end", MoveStep: &MoveStepCmd{Release: true,
		Step: AppStepCmd{ID: "app1", ExpectOp: OpMove, ExpectStep: "forward-old", Done: true, Status: AppRunning, At: t0}}})[0]).App
	if a.Op != "" || a.Status != AppRunning || a.Node != "pve2" {
		t.Fatalf("app after the move: %+v", a)
	}
	check(f, standby)
	f.Read(func(s *State) {
		if _, ok := s.Reservation("res1"); ok || s.ReservedVMID(old.VMID) || len(s.Reservations) != 1 {
			t.Fatalf("old reservation left: %+v", s.Reservations)
		}
	})
}
