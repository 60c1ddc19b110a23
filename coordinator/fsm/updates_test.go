package fsm

import (
	"fmt"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// TestAutoUpdateGuardedByAppState protects against a doubled automatic
// update (two leaders acting on the same state): the command that starts
// it applies only to an idle app at the version it was read at, with the
// policy auto; an update that fails keeps the version and is remembered
// as failed; one that succeeds records the new version.
func TestAutoUpdateGuardedByAppState(t *testing.T) {
	f := quotaFSM(t, nil, nil)
	app := mustOK(t, apply(t, f, createAppCmd("a1", "alice", "web", catalog.Resources{Cores: 1, MemoryMB: 256, DiskGB: 1}))[0]).App
	current := func() App {
		var a App
		f.Read(func(s *State) { a, _ = s.App(app.ID) })
		return a
	}
	done := func(rid, op, errText, to string) {
		a := current()
		mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: rid, AppStep: &AppStepCmd{ID: app.ID, ExpectOp: op, ExpectStep: a.Step, ExpectTask: a.TaskID,
			Done: true, Status: AppRunning, Error: errText, UpdatedTo: to, At: t0}})[0])
	}
	done("deployed", OpDeploy, "", "")
	if v := current().CatalogVersion; v != "1" {
		t.Fatalf("deployed at %q", v)
	}
	mustOK(t, apply(t, f, Command{Type: CmdSetCatalog, RequestID: "cat2", SetCatalog: &CatalogState{Entries: []catalog.Entry{{
		ID: "web", Name: "Web", Version: "2", Ports: []catalog.Port{{Name: "http", Internal: 8080, Protocol: "tcp"}}}}}})[0])
	auto := func(rid, bid, from string) Result {
		return apply(t, f, Command{Type: CmdAutoUpdate, RequestID: rid, AutoUpdate: &AutoUpdateCmd{
			Action: AppActionCmd{ID: app.ID, Op: OpUpdate, BackupID: bid, Version: "2", ExpectVersion: from, At: t0},
			Audit:  AuditRecord{Time: t0, Actor: AuditActor{Name: "system"}, Targets: []string{app.ID}, Action: "app.update.auto"}}})[0]
	}
	mustKind(t, auto("off", "b0", "1"), problem.Conflict) // the policy is off
	on, win := AutoUpdateAuto, "sun 03:00"
	mustOK(t, apply(t, f, Command{Type: CmdSetUpdatePolicy, RequestID: "pol", SetUpdatePolicy: &SetUpdatePolicyCmd{ID: app.ID, AutoUpdate: &on, Window: &win, At: t0}})[0])

	// The notice and the automatic update are app changes on the events
	// stream (and the update's backup a backup change).
	mark := f.LastChange()
	mustOK(t, apply(t, f, Command{Type: CmdUpdateNotice, RequestID: "notice", UpdateNotice: &UpdateNoticeCmd{ID: app.ID, From: "1", Version: "2", At: t0}})[0])
	mustKind(t, apply(t, f, Command{Type: CmdUpdateNotice, RequestID: "notice-again", UpdateNotice: &UpdateNoticeCmd{ID: app.ID, From: "1", Version: "2", At: t0}})[0], problem.Conflict)
	mustOK(t, auto("leader1", "b1", "1"))
	changes, _, _ := f.ChangesAfter(mark, 10)
	var kinds []string
	for _, c := range changes {
		kinds = append(kinds, string(c.Kind)+":"+c.Key)
	}
	if want := []string{"app:" + app.ID, "app:" + app.ID, "backup:b1"}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("changes: %v, want %v", kinds, want)
	}
	mustKind(t, auto("leader2", "b2", "1"), problem.Conflict) // busy
	var audit int
	f.Read(func(s *State) { audit = len(s.Audit) })
	if audit != 1 {
		t.Fatalf("audit records: %d, want 1", audit)
	}
	done("failed", OpUpdate, "update failed: health", "")
	if a := current(); a.CatalogVersion != "1" || a.Updates.Failed != "2" {
		t.Fatalf("after a failed update: version %q, updates %+v", a.CatalogVersion, a.Updates)
	}
	mustOK(t, auto("retry", "b3", "1"))
	done("ok", OpUpdate, "", "2")
	if a := current(); a.CatalogVersion != "2" || a.Updates.Failed != "" {
		t.Fatalf("after an update that succeeded: version %q, updates %+v", a.CatalogVersion, a.Updates)
	}
	mustKind(t, auto("stale", "b4", "1"), problem.Conflict) // at 2 now
}
