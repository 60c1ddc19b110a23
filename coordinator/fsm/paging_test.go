package fsm

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// TestHugePageIsEmptyNotPanic: every list of the state answers a page far
// past the end (page 2^63-1, whose offset overflows an int) with no items
// and the true total, and still answers the pages that exist.
func TestHugePageIsEmptyNotPanic(t *testing.T) {
	f := quotaFSM(t, nil, nil) // two users, alice and bob
	for i := range 5 {
		if i < 3 {
			mustOK(t, apply(t, f, Command{Type: CmdCreateUser, RequestID: fmt.Sprint("u", i),
				CreateUser: &CreateUserCmd{User: User{ID: fmt.Sprint("usr", i), Name: fmt.Sprint("user", i), Role: RoleUser}}})[0])
		}
		mustOK(t, apply(t, f, createAppCmd(fmt.Sprint("a", i), "alice", fmt.Sprint("web-", i), catalog.Resources{}))[0])
		mustOK(t, apply(t, f, auditCmd(fmt.Sprint("b", i), t0, rec(fmt.Sprint("r", i), t0)))[0])
	}
	lists := map[string]func(page, per int) (n, total int){
		"apps": func(p, q int) (int, int) {
			var items []App
			var total int
			f.Read(func(s *State) { items, total = s.ListApps("", p, q) })
			return len(items), total
		},
		"users": func(p, q int) (int, int) {
			var items []User
			var total int
			f.Read(func(s *State) { items, total = s.ListUsers(p, q) })
			return len(items), total
		},
		"reservations": func(p, q int) (int, int) {
			var items []Reservation
			var total int
			f.Read(func(s *State) { items, total = s.ListReservations(p, q) })
			return len(items), total
		},
		"audit": func(p, q int) (int, int) {
			var items []AuditRecord
			var total int
			f.Read(func(s *State) { items, total = s.ListAudit(AuditFilter{}, p, q) })
			return len(items), total
		},
	}
	for name, list := range lists {
		for _, c := range []struct{ page, per, want int }{
			{1, 100, 5}, {2, 2, 2}, {3, 2, 1}, {4, 2, 0},
			{math.MaxInt, 100, 0}, {math.MaxInt, 1, 0}, {math.MaxInt/2 + 1, 2, 0},
		} {
			n, total := list(c.page, c.per)
			if n != c.want || total != 5 {
				t.Errorf("%s page %d of %d: %d items, total %d; want %d items, total 5", name, c.page, c.per, n, total, c.want)
			}
		}
	}
}

// TestTakenHostnameDoesNotRevealItsHolder: the refusal of a taken hostname
// (which users see when they deploy) says it is taken and names no
// reservation or app of another owner.
func TestTakenHostnameDoesNotRevealItsHolder(t *testing.T) {
	f := quotaFSM(t, nil, nil)
	mustOK(t, apply(t, f, createAppCmd("a1", "alice", "vault", catalog.Resources{}))[0])
	r := apply(t, f, createAppCmd("a2", "bob", "Vault", catalog.Resources{}))[0]
	mustKind(t, r, problem.Conflict)
	msg := r.Err().Error()
	if problem.TypeOf(r.Err()) != ProblemHostnameTaken || !strings.Contains(msg, `hostname "vault" is taken`) || strings.Contains(msg, "res-a1") || strings.Contains(msg, "app-a1") {
		t.Fatalf("refusal %q: want it to say the hostname is taken, without the holder", msg)
	}
}
