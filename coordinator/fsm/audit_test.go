package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/problem"
)

func auditCmd(rid string, now time.Time, recs ...AuditRecord) Command {
	return Command{Type: CmdAudit, RequestID: rid, Audit: &AuditCmd{Records: recs, Now: now}}
}

func rec(reqID string, at time.Time) AuditRecord {
	return AuditRecord{Time: at, Actor: AuditActor{UserID: "usr_a", Name: "alice", TokenID: "tok_a"}, Source: "127.0.0.1:1",
		Method: "DELETE", Route: "DELETE /api/v1/apps/{id}", Targets: []string{"app_" + reqID}, Status: 204, RequestID: reqID}
}

func requestIDs(recs []AuditRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestID)
	}
	return out
}

func TestAuditRetentionByCount(t *testing.T) {
	f := New(0)
	mustOK(t, apply(t, f, Command{Type: CmdSetAuditPolicy, RequestID: "p", SetAuditPolicy: &SetAuditPolicyCmd{
		Policy: AuditPolicy{MaxRecords: 3, MaxAge: time.Hour}, Now: t0}})[0])
	for i := range 5 {
		mustOK(t, apply(t, f, auditCmd(fmt.Sprint("b", i), t0, rec(fmt.Sprint("r", i), t0)))[0])
	}
	var got []AuditRecord
	var total int
	f.Read(func(s *State) { got, total = s.ListAudit(AuditFilter{}, 1, 100) })
	if d := cmp.Diff([]string{"r4", "r3", "r2"}, requestIDs(got)); d != "" || total != 3 {
		t.Fatalf("kept (-want +got):\n%s total %d", d, total)
	}
	if got[0].ID != "aud_5" || got[2].ID != "aud_3" {
		t.Fatalf("IDs %s..%s, want aud_5..aud_3", got[0].ID, got[2].ID)
	}
	// Lowering the count prunes at once.
	mustOK(t, apply(t, f, Command{Type: CmdSetAuditPolicy, RequestID: "p2", SetAuditPolicy: &SetAuditPolicyCmd{
		Policy: AuditPolicy{MaxRecords: 1, MaxAge: time.Hour}, Now: t0}})[0])
	f.Read(func(s *State) { got, total = s.ListAudit(AuditFilter{}, 1, 100) })
	if total != 1 || got[0].RequestID != "r4" {
		t.Fatalf("after max_records 1: %v", requestIDs(got))
	}
}

func TestAuditRetentionByAgeUsesTheCommandsTime(t *testing.T) {
	f := New(0)
	mustOK(t, apply(t, f, auditCmd("b1", t0, rec("old", t0), rec("mid", t0.Add(time.Hour))))[0])
	// Default retention is 90 days: nothing goes before then.
	mustOK(t, apply(t, f, auditCmd("b2", t0.Add(89*24*time.Hour), rec("new", t0.Add(89*24*time.Hour))))[0])
	var got []AuditRecord
	f.Read(func(s *State) { got, _ = s.ListAudit(AuditFilter{}, 1, 100) })
	if len(got) != 3 {
		t.Fatalf("kept %v, want all three", requestIDs(got))
	}
	mustOK(t, apply(t, f, auditCmd("b3", t0.Add(90*24*time.Hour+30*time.Minute)))[0])
	f.Read(func(s *State) { got, _ = s.ListAudit(AuditFilter{}, 1, 100) })
	if d := cmp.Diff([]string{"new", "mid"}, requestIDs(got)); d != "" {
		t.Fatalf("kept (-want +got):\n%s", d)
	}
}

func TestAuditListFiltersAndPages(t *testing.T) {
	f := New(0)
	bob := rec("bob1", t0.Add(2*time.Hour))
	bob.Actor = AuditActor{UserID: "usr_b", Name: "bob", SessionID: "ses_b"}
	bob.Method, bob.Route, bob.Action = "GET", "GET /api/v1/apps/{id}/secrets", "app.secrets.read"
	denied := rec("anon", t0.Add(3*time.Hour))
	denied.Actor, denied.Status, denied.Targets = AuditActor{}, 401, nil
	mustOK(t, apply(t, f, auditCmd("b", t0, rec("a1", t0), rec("a2", t0.Add(time.Hour)), bob, denied))[0])
	cases := []struct {
		f    AuditFilter
		want []string
	}{
		{AuditFilter{}, []string{"anon", "bob1", "a2", "a1"}},
		{AuditFilter{Actor: "alice"}, []string{"a2", "a1"}},
		{AuditFilter{Actor: "usr_b"}, []string{"bob1"}},
		{AuditFilter{Actor: "ses_b"}, []string{"bob1"}},
		{AuditFilter{Actor: "tok_a"}, []string{"a2", "a1"}},
		{AuditFilter{Target: "app_a2"}, []string{"a2"}},
		{AuditFilter{Action: "app.secrets.read"}, []string{"bob1"}},
		{AuditFilter{Action: "delete /API/v1/apps"}, []string{"anon", "a2", "a1"}},
		{AuditFilter{Action: "secrets", Actor: "alice"}, nil},
		{AuditFilter{Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}, []string{"bob1", "a2"}},
	}
	for _, c := range cases {
		var got []AuditRecord
		f.Read(func(s *State) { got, _ = s.ListAudit(c.f, 1, 100) })
		if d := cmp.Diff(c.want, requestIDs(got)); d != "" {
			t.Errorf("%+v (-want +got):\n%s", c.f, d)
		}
	}
	var got []AuditRecord
	var total int
	f.Read(func(s *State) { got, total = s.ListAudit(AuditFilter{}, 2, 3) })
	if total != 4 || len(got) != 1 || got[0].RequestID != "a1" {
		t.Fatalf("page 2 of 3: %v total %d", requestIDs(got), total)
	}
	f.Read(func(s *State) { got, _ = s.ListAudit(AuditFilter{Actor: ""}, 1, 1) })
	if got[0].Targets == nil {
		t.Fatal("a record without targets lists them as null, want []")
	}
}

func TestAuditBatchAppliedOnceAndPolicyValidated(t *testing.T) {
	f := New(0)
	c := auditCmd("same", t0, rec("r1", t0))
	mustOK(t, apply(t, f, c)[0])
	if r := apply(t, f, c)[0]; !r.Replayed {
		t.Fatal("a retried batch was not answered from the dedup table")
	}
	var n int
	f.Read(func(s *State) { n = len(s.Audit) })
	if n != 1 {
		t.Fatalf("%d records after a retried batch, want 1", n)
	}
	for _, p := range []AuditPolicy{{0, time.Hour}, {MaxAuditMaxRecords + 1, time.Hour}, {10, time.Minute}, {10, MaxAuditMaxAge + 1}} {
		mustKind(t, apply(t, f, Command{Type: CmdSetAuditPolicy, RequestID: fmt.Sprint(p), SetAuditPolicy: &SetAuditPolicyCmd{Policy: p}})[0], problem.Invalid)
	}
}

func TestAuditSurvivesSnapshotRestore(t *testing.T) {
	f := New(0)
	populate(t, f)
	mustOK(t, apply(t, f, Command{Type: CmdSetAuditPolicy, RequestID: "p", SetAuditPolicy: &SetAuditPolicyCmd{
		Policy: AuditPolicy{MaxRecords: 2, MaxAge: time.Hour}, Now: t0}})[0])
	mustOK(t, apply(t, f, auditCmd("b", t0, rec("r1", t0), rec("r2", t0), rec("r3", t0)))[0])
	want, _ := f.Encode()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, _ := g.Encode()
	if !bytes.Equal(want, got) {
		t.Fatalf("restored state differs:\n%s", cmp.Diff(string(want), string(got)))
	}
	next := auditCmd("b2", t0, rec("r4", t0))
	f.ApplyCommands(f.AppliedIndex()+1, next)
	g.ApplyCommands(g.AppliedIndex()+1, next)
	a, _ := f.Encode()
	b, _ := g.Encode()
	if !bytes.Equal(a, b) {
		t.Fatal("the restored FSM audits differently (IDs, retention)")
	}
}
