package fsm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/prune"
)

// runningApp makes app1 of alice, running on pve1.
func runningApp(t *testing.T) *FSM {
	t.Helper()
	f := New(0)
	entry := catalog.Entry{ID: "web", Name: "Web", Version: "1", Ports: []catalog.Port{{Name: "ui", Internal: 80, Protocol: "tcp"}}}
	for _, c := range []Command{
		{Type: CmdSetCatalog, RequestID: "cat", SetCatalog: &CatalogState{Entries: []catalog.Entry{entry}}},
		{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
		{Type: CmdJoinNode, RequestID: "j", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}},
		{Type: CmdCreateUser, RequestID: "alice", CreateUser: &CreateUserCmd{User: User{ID: "alice", Name: "alice", Role: RoleUser}}},
		{Type: CmdCreateApp, RequestID: "a1", CreateApp: &CreateAppCmd{
			App:     App{ID: "app1", Owner: "alice", CatalogID: "web", CreatedAt: t0},
			Reserve: ReserveCmd{ID: "res1", Hostname: "web", Node: "pve1", PublicPorts: 1, Owner: "app:app1", CreatedAt: t0}}},
		{Type: CmdAppStep, RequestID: "deployed", AppStep: &AppStepCmd{ID: "app1", ExpectOp: OpDeploy, Done: true, Status: AppRunning, At: t0}},
	} {
		mustOK(t, apply(t, f, c)[0])
	}
	return f
}

func schedCmd(rid string, c BackupScheduleCmd) Command {
	c.AppID = "app1"
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	return Command{Type: CmdBackupSchedule, RequestID: rid, BackupSchedule: &c}
}

// finishBackup ends app1's backup operation with its backup ready.
func finishBackup(t *testing.T, f *FSM, id string, at time.Time) {
	t.Helper()
	mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: "done-" + id, AppStep: &AppStepCmd{ID: "app1", ExpectOp: OpBackup,
		Done: true, Status: AppRunning, Backup: &Backup{ID: id, Status: BackupReady, Volid: "local:backup/" + id}, At: at}})[0])
}

// TestScheduledBackupStartsOnceAndRetentionPlansPrunes: the command that
// starts a scheduled backup also moves the next run, guarded by the one
// expected, so a second proposal of the same run (another leader's)
// changes nothing; a run is never started before it is due; every backup
// that becomes ready plans the prune of what the retention removes.
func TestScheduledBackupStartsOnceAndRetentionPlansPrunes(t *testing.T) {
	f := runningApp(t)
	mustOK(t, apply(t, f, Command{Type: CmdSetBackupPolicy, RequestID: "pol", SetBackupPolicy: &SetBackupPolicyCmd{AppID: "app1", Owner: "alice",
		Policy: &BackupPolicy{Schedule: "hourly", Retention: prune.Retention{KeepLast: 2}}}})[0])
	h := func(n int) time.Time { return time.Date(2026, 1, 2, 4+n, 0, 0, 0, time.UTC) }
	mustOK(t, apply(t, f, schedCmd("init", BackupScheduleCmd{Schedule: "hourly", Next: h(0), At: t0}))[0])
	// Not due yet.
	mustKind(t, apply(t, f, schedCmd("early", BackupScheduleCmd{ExpectSchedule: "hourly", ExpectNext: h(0), Schedule: "hourly", Next: h(1), Start: true, BackupID: "b0", At: h(0).Add(-time.Second)}))[0], problem.Conflict)
	for i := 0; i < 3; i++ {
		id := "b" + string(rune('0'+i))
		run := schedCmd("run-"+id, BackupScheduleCmd{ExpectSchedule: "hourly", ExpectNext: h(i), Schedule: "hourly", Next: h(i + 1), Start: true, BackupID: id, At: h(i)})
		from := f.LastChange()
		mustOK(t, apply(t, f, run)[0])
		// The run is on the events stream: the app and its new backup.
		if got, _, _ := f.ChangesAfter(from, 10); len(got) != 2 || got[0].Key != "app1" || got[1].Kind != ChangeBackup || got[1].Key != id {
			t.Fatalf("changes of run %d: %+v", i, got)
		}
		f.Read(func(s *State) {
			b, ok := s.Backup(id)
			if !ok || b.Reason != BackupReasonScheduled || s.Apps["app1"].Op != OpBackup {
				t.Fatalf("run %d: backup %+v, app op %q", i, b, s.Apps["app1"].Op)
			}
		})
		finishBackup(t, f, id, h(i).Add(time.Minute))
		// The same run proposed again after it ended, as a new leader that
		// saw it due would: nothing changes.
		again := schedCmd("again-"+id, BackupScheduleCmd{ExpectSchedule: "hourly", ExpectNext: h(i), Schedule: "hourly", Next: h(i + 1), Start: true, BackupID: id + "x", At: h(i).Add(2 * time.Minute)})
		mustKind(t, apply(t, f, again)[0], problem.Conflict)
		f.Read(func(s *State) {
			if _, ok := s.Backup(id + "x"); ok || s.Apps["app1"].Op != "" {
				t.Fatalf("run %d started twice", i)
			}
			if rec, _ := s.BackupScheduleOf("app1"); !rec.NextRun.Equal(h(i+1)) || rec.LastBackup != id {
				t.Fatalf("run %d: schedule %+v", i, rec)
			}
		})
	}
	f.Read(func(s *State) {
		if got := s.PendingPrunesOf("app1"); !slices.Equal(got, []string{"b0"}) {
			t.Fatalf("pending prunes %q, want [b0] (keep_last 2 of 3)", got)
		}
		n := 0
		for _, r := range s.Audit {
			if r.Actor.Name == "system" && r.Action == "app.backup.scheduled" {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("%d audit records of scheduled backups, want 3", n)
		}
	})
	// The system deletes only what the retention removes.
	mustKind(t, apply(t, f, Command{Type: CmdPruneBackup, RequestID: "prune-kept", PruneBackup: &PruneBackupCmd{AppID: "app1", BackupID: "b1", At: h(3)}})[0], problem.Conflict)
	from := f.LastChange()
	mustOK(t, apply(t, f, Command{Type: CmdPruneBackup, RequestID: "prune", PruneBackup: &PruneBackupCmd{AppID: "app1", BackupID: "b0", At: h(3)}})[0])
	if got, _, _ := f.ChangesAfter(from, 10); len(got) != 1 || got[0].Kind != ChangeApp || got[0].Key != "app1" {
		t.Fatalf("changes of the prune: %+v", got)
	}
	f.Read(func(s *State) {
		a := s.Apps["app1"]
		if a.Op != OpDeleteBackup || a.OpArgs["restore_backup"] != "b0" {
			t.Fatalf("prune started %q on %q", a.Op, a.OpArgs["restore_backup"])
		}
		if r := s.Audit[len(s.Audit)-1]; r.Actor.Name != "system" || r.Action != "app.backup.pruned" || r.Targets[1] != "b0" {
			t.Fatalf("audit of the prune: %+v", r)
		}
	})
	// The prune's delete ends: the backup and its pending prune go.
	mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: "pruned", AppStep: &AppStepCmd{ID: "app1", ExpectOp: OpDeleteBackup,
		Done: true, Status: AppRunning, Backup: &Backup{ID: "b0"}, At: h(3)}})[0])
	f.Read(func(s *State) {
		if _, ok := s.Backup("b0"); ok || len(s.PendingPrunesOf("app1")) != 0 {
			t.Fatalf("after the prune: pending %q", s.PendingPrunesOf("app1"))
		}
	})
}

// TestScheduledBackupSkipLogsAndAdvances: a skipped run starts nothing,
// leaves a line in the app's log, and moves the next run.
func TestScheduledBackupSkipLogsAndAdvances(t *testing.T) {
	f := runningApp(t)
	h := func(n int) time.Time { return time.Date(2026, 1, 2, 4+n, 0, 0, 0, time.UTC) }
	mustOK(t, apply(t, f, schedCmd("init", BackupScheduleCmd{Schedule: "hourly", Next: h(0), At: t0}))[0])
	mustOK(t, apply(t, f, schedCmd("skip", BackupScheduleCmd{ExpectSchedule: "hourly", ExpectNext: h(0), Schedule: "hourly", Next: h(1), Skip: "update was still in progress", At: h(0)}))[0])
	f.Read(func(s *State) {
		a := s.Apps["app1"]
		if a.Op != "" || len(s.AppBackups("app1")) != 0 {
			t.Fatalf("a skipped run started something: op %q, backups %v", a.Op, s.AppBackups("app1"))
		}
		if last := a.Log[len(a.Log)-1].Msg; !strings.Contains(last, "skipped: update was still in progress") {
			t.Fatalf("app log: %q", last)
		}
		if rec, _ := s.BackupScheduleOf("app1"); !rec.NextRun.Equal(h(1)) {
			t.Fatalf("schedule %+v", rec)
		}
	})
}

// TestBackupPolicyValidation: a bad policy is refused naming the field.
func TestBackupPolicyValidation(t *testing.T) {
	for _, tt := range []struct {
		p     BackupSettings
		field string
	}{
		{BackupSettings{BackupPolicy: BackupPolicy{Schedule: "funday"}, Timezone: "UTC"}, "schedule:"},
		{BackupSettings{BackupPolicy: BackupPolicy{Mode: "fast"}, Timezone: "UTC"}, "mode:"},
		{BackupSettings{BackupPolicy: BackupPolicy{Storage: "Bad Name"}, Timezone: "UTC"}, "storage:"},
		{BackupSettings{BackupPolicy: BackupPolicy{Retention: prune.Retention{KeepDaily: -1}}, Timezone: "UTC"}, "retention.keep_daily:"},
		{BackupSettings{BackupPolicy: BackupPolicy{Retention: prune.Retention{KeepYearly: maxKeep + 1}}, Timezone: "UTC"}, "retention.keep_yearly:"},
		{BackupSettings{Timezone: "Mars/Olympus"}, "timezone:"},
		{BackupSettings{Timezone: "Local"}, "timezone:"},
	} {
		err := tt.p.Validate()
		if err == nil || !strings.HasPrefix(err.(*problem.Error).Detail, tt.field) {
			t.Errorf("Validate(%+v) = %v, want an error on %s", tt.p, err, tt.field)
		}
	}
	if err := (BackupSettings{BackupPolicy: BackupPolicy{Schedule: "mon..fri 21:00", Mode: "stop", Storage: "pbs-1"}, Timezone: "Europe/Berlin"}).Validate(); err != nil {
		t.Errorf("a good policy: %v", err)
	}
}
