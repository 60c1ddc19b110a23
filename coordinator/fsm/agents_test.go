package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

func hash64(c byte) string { return strings.Repeat(string(c), 64) }

func wantKind(t *testing.T, r Result, k problem.Kind) {
	t.Helper()
	if err := r.Err(); err == nil || problem.KindOf(err) != k {
		t.Fatalf("got %v, want %v", err, k)
	}
}

func TestJoinTokensAreSingleUseAndExpire(t *testing.T) {
	f := New(0)
	tok := func(rid, h string, exp time.Time) Command {
		return Command{Type: CmdJoinToken, RequestID: rid, JoinToken: &JoinToken{ID: "jt-" + rid, Hash: h, CreatedAt: t0, ExpiresAt: exp}}
	}
	join := func(rid, h, node string, at time.Time) Command {
		return Command{Type: CmdJoinNode, RequestID: rid, JoinNode: &JoinNodeCmd{TokenHash: h, Node: node, At: at}}
	}
	mustOK(t, apply(t, f, tok("t1", hash64('a'), t0.Add(time.Hour)))[0])
	mustOK(t, apply(t, f, tok("t2", hash64('b'), t0.Add(time.Minute)))[0])
	r := mustOK(t, apply(t, f, join("j1", hash64('a'), "pve1", t0))[0])
	if r.Node.Status != NodeReady {
		t.Fatalf("joined node: %+v", r.Node)
	}
	wantKind(t, apply(t, f, join("j2", hash64('a'), "pve2", t0))[0], problem.Unauthenticated)                    // reused
	wantKind(t, apply(t, f, join("j3", hash64('b'), "pve2", t0.Add(2*time.Minute)))[0], problem.Unauthenticated) // expired
	wantKind(t, apply(t, f, join("j4", hash64('c'), "pve2", t0))[0], problem.Unauthenticated)                    // forged
	if _, ok := f.st.Node("pve2"); ok {
		t.Fatal("a refused join enrolled the node")
	}
}

// TestJoinRetryWithTheSameKey: a used token lets the same node with the
// same key join again until it expires (the answer to the first join may
// have been lost), and nobody else.
func TestJoinRetryWithTheSameKey(t *testing.T) {
	f := New(0)
	join := func(rid, node, key string, at time.Time) Result {
		return apply(t, f, Command{Type: CmdJoinNode, RequestID: rid, JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: node, KeyPin: key, At: at}})[0]
	}
	mustOK(t, apply(t, f, Command{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}})[0])
	first := mustOK(t, join("j1", "pve1", hash64('k'), t0)).Node
	again := mustOK(t, join("j2", "pve1", hash64('k'), t0.Add(time.Minute))).Node
	if again.JoinedAt != first.JoinedAt || again.Status != NodeReady {
		t.Fatalf("retried join: %+v, first %+v", again, first)
	}
	wantKind(t, join("j3", "pve1", hash64('l'), t0), problem.Unauthenticated)                  // another key
	wantKind(t, join("j4", "pve2", hash64('k'), t0), problem.Unauthenticated)                  // another node
	wantKind(t, join("j5", "pve1", "", t0), problem.Unauthenticated)                           // no key
	wantKind(t, join("j6", "pve1", hash64('k'), t0.Add(2*time.Hour)), problem.Unauthenticated) // expired
	f.Read(func(s *State) {
		if tk := s.JoinTokens[hash64('a')]; tk.UsedBy != "pve1" || tk.UsedKey != hash64('k') || !tk.UsedAt.Equal(t0) {
			t.Fatalf("token: %+v", tk)
		}
	})
}

func TestTaskFencing(t *testing.T) {
	f := New(0)
	apply(t, f, Command{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
		Command{Type: CmdJoinNode, RequestID: "j", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}})
	res := mustOK(t, apply(t, f, reserveCmd("r", "res1", "app1", "pve1", 1, false))[0])
	vmid := res.Reservation.VMID
	task := mustOK(t, apply(t, f, Command{Type: CmdCreateTask, RequestID: "c", CreateTask: &Task{ID: "task1", Node: "pve1", Kind: "create", ReservationID: "res1"}})[0]).Task
	if task.VMID != vmid || task.Fence != f.AppliedIndex() || task.State != TaskPending {
		t.Fatalf("task: %+v", task)
	}
	done := func(rid, node string, fence uint64, kind string) Result {
		return apply(t, f, Command{Type: CmdCompleteTask, RequestID: rid, CompleteTask: &CompleteTaskCmd{ID: "task1", Node: node, Fence: fence, OK: false, Error: kind, ErrorKind: taskspec.Failure(kind), At: t0}})[0]
	}
	wantKind(t, done("d0", "pve2", task.Fence, "locked"), problem.NotFound) // another node's task

	// "exists" on the reserved VMID: the VMID becomes foreign and the task
	// is reissued with a fresh one in the same command.
	re := mustOK(t, done("d1", "pve1", task.Fence, "exists")).Task
	if re.VMID == vmid || re.Fence <= task.Fence || re.State != TaskPending || re.Attempt != 2 {
		t.Fatalf("reissued: %+v", re)
	}
	f.Read(func(s *State) {
		if !s.IsForeign(vmid) || s.Reservations["res1"].VMID != re.VMID || !s.ReservedVMID(re.VMID) || s.ReservedVMID(vmid) {
			t.Fatalf("registry after reissue: foreign=%v res=%+v", s.Foreign, s.Reservations["res1"])
		}
	})
	wantKind(t, done("d2", "pve1", task.Fence, "locked"), problem.Conflict) // stale fence
	if r := mustOK(t, done("d3", "pve1", re.Fence, "locked")).Task; r.State != TaskFailed {
		t.Fatalf("failed create: %+v", r)
	}
	mustOK(t, done("d4", "pve1", re.Fence, "locked")) // a repeated report: the same answer
}

// TestRemoveNode: a node that holds something is not removed (409); one
// that holds nothing is, and joining again with a new token is a new
// enrolment, while a retried join is the same one.
func TestRemoveNode(t *testing.T) {
	f := New(0)
	token := func(rid string, h string) Command {
		return Command{Type: CmdJoinToken, RequestID: rid, JoinToken: &JoinToken{ID: "jt-" + rid, Hash: h, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}
	}
	join := func(rid, h string, at time.Time) Result {
		return apply(t, f, Command{Type: CmdJoinNode, RequestID: rid, JoinNode: &JoinNodeCmd{TokenHash: h, Node: "pve1", KeyPin: hash64('k'), Enrolment: "enr_" + rid, At: at}})[0]
	}
	remove := func(rid string) Result {
		return apply(t, f, Command{Type: CmdRemoveNode, RequestID: rid, RemoveNode: &RemoveNodeCmd{Node: "pve1"}})[0]
	}
	mustOK(t, apply(t, f, token("t1", hash64('a')), token("t2", hash64('b')))[0])
	if n := mustOK(t, join("j1", hash64('a'), t0)).Node; n.Enrolment != "enr_j1" {
		t.Fatalf("joined: %+v", n)
	}
	if n := mustOK(t, join("j1-retried", hash64('a'), t0)).Node; n.Enrolment != "enr_j1" {
		t.Fatalf("a retried join is a new enrolment: %+v", n)
	}
	mustOK(t, apply(t, f, reserveCmd("r", "res1", "app1", "pve1", 1, false))[0])
	r := remove("x1")
	wantKind(t, r, problem.Conflict)
	if !strings.Contains(r.Err().Error(), "1 reservation(s)") {
		t.Fatalf("conflict: %v", r.Err())
	}
	mustOK(t, apply(t, f, Command{Type: CmdRelease, RequestID: "rel", Release: &ReleaseCmd{ID: "res1"}})[0])
	mustOK(t, remove("x2"))
	if _, ok := f.st.Node("pve1"); ok {
		t.Fatal("the removed node is still enrolled")
	}
	wantKind(t, remove("x3"), problem.NotFound)
	later := t0.Add(10 * time.Minute)
	if n := mustOK(t, join("j2", hash64('b'), later)).Node; n.Enrolment != "enr_j2" || !n.JoinedAt.Equal(later) {
		t.Fatalf("joined again: %+v", n)
	}
}
