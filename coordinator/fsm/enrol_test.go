package fsm

import (
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
)

// TestUnnamedTokenCannotReenrolAnExistingNode: a join token that names no
// node enrols only a node that is not enrolled yet. Used with an enrolled
// node's name it is refused, stays unused and leaves the node's enrolment
// (and so its certificates) as they were; a token made for the node enrols
// it again. The retry of a lost join answer still works. CheckJoin, which
// the leader runs before it proposes, gives the same answers and changes
// nothing.
func TestUnnamedTokenCannotReenrolAnExistingNode(t *testing.T) {
	f := New(0)
	token := func(rid string, h byte, node string) {
		mustOK(t, apply(t, f, Command{Type: CmdJoinToken, RequestID: rid, JoinToken: &JoinToken{
			ID: "jt-" + rid, Hash: hash64(h), Node: node, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}})[0])
	}
	cmd := func(h byte, node, key, enrolment string) JoinNodeCmd {
		return JoinNodeCmd{TokenHash: hash64(h), Node: node, KeyPin: hash64(key[0]), Enrolment: enrolment, At: t0.Add(time.Minute)}
	}
	check := func(c JoinNodeCmd) error {
		var err error
		f.Read(func(s *State) { err = s.CheckJoin(c) })
		return err
	}
	join := func(rid string, c JoinNodeCmd) Result {
		t.Helper()
		before := f.AppliedIndex()
		pre := check(c)
		r := apply(t, f, Command{Type: CmdJoinNode, RequestID: rid, JoinNode: &c})[0]
		if problem.KindOf(pre) != problem.KindOf(r.Err()) || (pre == nil) != (r.Err() == nil) {
			t.Fatalf("CheckJoin said %v, the join %v", pre, r.Err())
		}
		if f.AppliedIndex() != before+1 {
			t.Fatal("apply did not advance the index")
		}
		return r
	}
	enrolment := func(node string) string {
		var n NodeRecord
		f.Read(func(s *State) { n, _ = s.Node(node) })
		return n.Enrolment
	}

	token("a", 'a', "")
	token("b", 'b', "")
	token("c", 'c', "pve1")
	mustOK(t, join("j1", cmd('a', "pve1", "k", "enr-1")))

	// The attack: an unnamed token, the enrolled node's name, a new key.
	r := join("j2", cmd('b', "pve1", "x", "enr-evil"))
	wantKind(t, r, problem.Permission)
	if got := enrolment("pve1"); got != "enr-1" {
		t.Fatalf("pve1 re-enrolled by an unnamed token: enrolment %q", got)
	}
	f.Read(func(s *State) {
		if tk := s.JoinTokens[hash64('b')]; tk.UsedBy != "" {
			t.Fatalf("the refused token was consumed: %+v", tk)
		}
	})

	// The first join's lost answer may still be retried with its token.
	if n := mustOK(t, join("j3", cmd('a', "pve1", "k", "enr-retry"))).Node; n.Enrolment != "enr-1" {
		t.Fatalf("retried join: %+v", n)
	}
	// The unnamed token still enrols a new node.
	mustOK(t, join("j4", cmd('b', "pve2", "y", "enr-2")))
	// A token made for pve1 enrols it again: a new enrolment.
	mustOK(t, join("j5", cmd('c', "pve1", "z", "enr-3")))
	if got := enrolment("pve1"); got != "enr-3" {
		t.Fatalf("pve1 after the join with its own token: enrolment %q", got)
	}
}

// TestCheckJoinChangesNothing: the leader's check before it proposes a
// join refuses what the join would refuse (unknown, expired, another
// node's token, a bad name) and writes nothing.
func TestCheckJoinChangesNothing(t *testing.T) {
	f := New(0)
	mustOK(t, apply(t, f, Command{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{
		ID: "jt", Hash: hash64('a'), Node: "pve1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}})[0])
	index := f.AppliedIndex()
	cases := []struct {
		name string
		c    JoinNodeCmd
		kind problem.Kind
	}{
		{"unknown token", JoinNodeCmd{TokenHash: hash64('z'), Node: "pve1", At: t0}, problem.Unauthenticated},
		{"expired", JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0.Add(time.Hour)}, problem.Unauthenticated},
		{"another node's token", JoinNodeCmd{TokenHash: hash64('a'), Node: "pve2", At: t0}, problem.Unauthenticated},
		{"bad name", JoinNodeCmd{TokenHash: hash64('a'), Node: "pve 1", At: t0}, problem.Invalid},
	}
	for _, tc := range cases {
		var err error
		f.Read(func(s *State) { err = s.CheckJoin(tc.c) })
		if problem.KindOf(err) != tc.kind || err == nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
		}
	}
	var err error
	f.Read(func(s *State) { err = s.CheckJoin(JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}) })
	if err != nil {
		t.Fatalf("a good join: %v", err)
	}
	f.Read(func(s *State) {
		if tk := s.JoinTokens[hash64('a')]; tk.UsedBy != "" || len(s.Nodes) != 0 {
			t.Fatalf("CheckJoin changed the state: %+v %v", tk, s.Nodes)
		}
	})
	if f.AppliedIndex() != index {
		t.Fatal("CheckJoin moved the index")
	}
}
