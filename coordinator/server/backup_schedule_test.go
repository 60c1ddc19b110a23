package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

type policyOut struct {
	Schedule, Storage, Mode, Source string
	NextRun                         *string `json:"next_run"`
	Retention                       map[string]int
}

// lcall calls the leader.
func (tc *testCluster) lcall(method, path, token string, body any, out any) (int, error) {
	return tc.call(tc.waitLeader(), method, path, token, body, nil, out)
}

// nextRun waits until app id's scheduler state has a next run and returns it.
func (tc *testCluster) nextRun(token, id string) time.Time {
	tc.t.Helper()
	var next time.Time
	waitFor(tc.t.(*testing.T), "next run of "+id, 20*time.Second, func() bool {
		var p policyOut
		if code, _ := tc.lcall("GET", "/api/v1/apps/"+id+"/backup-policy", token, nil, &p); code != 200 || p.NextRun == nil {
			return false
		}
		t, err := time.Parse(time.RFC3339, *p.NextRun)
		next = t
		return err == nil
	})
	return next
}

// advanceTo moves the servers' clock just past t.
func (tc *testCluster) advanceTo(t *testing.T, at time.Time) {
	if d := at.Sub(tc.clock.now()); d > 0 {
		tc.clock.advance(t, d+time.Second)
	}
}

// scheduledRuns counts the scheduled backups app id's log records.
func (tc *testCluster) scheduledRuns(token, id string) int {
	var logs struct{ Items []fsm.LogLine }
	if code, err := tc.lcall("GET", "/api/v1/apps/"+id+"/logs?limit=1000", token, nil, &logs); err != nil || code != 200 {
		tc.t.Fatalf("logs: %d %v", code, err)
	}
	n := 0
	for _, l := range logs.Items {
		if strings.HasPrefix(l.Msg, "scheduled backup bak_") {
			n++
		}
	}
	return n
}

// scheduledIDs lists the backups of app id's scheduled runs, oldest first.
func (tc *testCluster) scheduledIDs(token, id string) []string {
	var logs struct{ Items []fsm.LogLine }
	if code, err := tc.lcall("GET", "/api/v1/apps/"+id+"/logs?limit=1000", token, nil, &logs); err != nil || code != 200 {
		tc.t.Fatalf("logs: %d %v", code, err)
	}
	var out []string
	for _, l := range logs.Items {
		if rest, ok := strings.CutPrefix(l.Msg, "scheduled backup "); ok && strings.HasPrefix(rest, "bak_") {
			out = append(out, strings.Fields(rest)[0])
		}
	}
	return out
}

func (tc *testCluster) lbackups(token, app string) []backupOut {
	var out struct{ Items []backupOut }
	if code, err := tc.lcall("GET", "/api/v1/apps/"+app+"/backups", token, nil, &out); err != nil || code != 200 {
		tc.t.Fatalf("backups: %d %v", code, err)
	}
	return out.Items
}

// idle reports whether app id has no operation in progress and every
// backup is done.
func (tc *testCluster) idle(token, id string) bool {
	var a struct{ Op, Status string }
	if code, _ := tc.lcall("GET", "/api/v1/apps/"+id, token, nil, &a); code != 200 || a.Op != "" {
		return false
	}
	for _, b := range tc.lbackups(token, id) {
		if b.Status == fsm.BackupCreating {
			return false
		}
	}
	return true
}

// TestScheduledBackupFiresWithFakeClockAndPrunes: with the servers' clock
// moved past the next run, the scheduler starts one backup on the policy's
// storage (a Proxmox Backup Server storage here) and mode; after each
// backup the retention (keep_last 2, counting a manual backup too) deletes
// the older ones; runs missed over five hours make one run; scheduled runs
// are in the audit log as the system.
func TestScheduledBackupFiresWithFakeClockAndPrunes(t *testing.T) {
	tc, ag, tok := appCluster(t)
	if err := ag.sim.Store.Update(func(n *pvesim.Node) error {
		n.Storages = append(n.Storages, pvesim.Storage{ID: "pbs1", Type: "pbs", Content: []string{"backup"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a := deployRunning(t, tc, tok, "sched")
	policy := map[string]any{"schedule": "hourly", "storage": "pbs1", "mode": "suspend", "retention": map[string]int{"keep_last": 2}}
	waitFor(t, "policy on the PBS storage", 20*time.Second, func() bool {
		code, _ := tc.lcall("PUT", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], policy, nil)
		return code == 200
	})
	var p policyOut
	if code, _ := tc.lcall("GET", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], nil, &p); code != 200 || p.Source != "app" || p.Storage != "pbs1" || p.Retention["keep_last"] != 2 {
		t.Fatalf("policy: %d %+v", code, p)
	}
	// A manual backup counts for the retention.
	if code, _ := tc.lcall("POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil); code != 202 {
		t.Fatalf("manual backup: %d", code)
	}
	waitFor(t, "manual backup", 20*time.Second, func() bool { return tc.idle(tok["alice"], a.ID) })
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	for i := 1; i <= 3; i++ {
		next := tc.nextRun(tok["alice"], a.ID)
		tc.advanceTo(t, next)
		waitFor(t, "scheduled run", 20*time.Second, func() bool {
			return tc.scheduledRuns(tok["alice"], a.ID) == i && tc.idle(tok["alice"], a.ID)
		})
	}
	waitFor(t, "prune to two backups", 20*time.Second, func() bool {
		bs := tc.lbackups(tok["alice"], a.ID)
		return len(bs) == 2 && tc.idle(tok["alice"], a.ID)
	})
	runs := tc.scheduledIDs(tok["alice"], a.ID)
	kept := tc.lbackups(tok["alice"], a.ID) // newest first
	if len(runs) != 3 || kept[0].ID != runs[2] || kept[1].ID != runs[1] {
		t.Fatalf("kept %+v, want the two newest scheduled backups of %q", kept, runs)
	}
	for _, b := range kept {
		if b.Reason != "scheduled" || b.Status != "ready" || !strings.HasPrefix(b.Volid, "pbs1:backup/") {
			t.Fatalf("kept backup %+v: want a ready scheduled backup on pbs1", b)
		}
	}
	if err := ag.sim.Store.View(func(n *pvesim.Node) error {
		if len(n.Backups) != 2 {
			t.Errorf("archives on the node: %d, want 2", len(n.Backups))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Five hours without a leader's clock reaching the runs: one run.
	tc.clock.advance(t, 5*time.Hour)
	waitFor(t, "the missed run", 20*time.Second, func() bool {
		return tc.scheduledRuns(tok["alice"], a.ID) == 4 && tc.idle(tok["alice"], a.ID)
	})
	if next := tc.nextRun(tok["alice"], a.ID); !next.After(tc.clock.now()) {
		t.Fatalf("next run %s is not in the future", next)
	}
	if n := tc.scheduledRuns(tok["alice"], a.ID); n != 4 {
		t.Fatalf("%d scheduled runs after five missed hours, want 4 (one more)", n)
	}
	waitFor(t, "prune to two backups again", 20*time.Second, func() bool {
		return len(tc.lbackups(tok["alice"], a.ID)) == 2 && tc.idle(tok["alice"], a.ID)
	})

	var audit struct {
		Items []struct {
			Action  string
			Targets []string
			Actor   struct{ Name string }
		}
	}
	if code, _ := tc.lcall("GET", "/api/v1/audit?actor=system&per_page=100", tok["admin"], nil, &audit); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	n, pruned := 0, 0
	for _, r := range audit.Items {
		if r.Action == "app.backup.scheduled" && r.Targets[0] == a.ID {
			n++
		}
		if r.Action == "app.backup.pruned" && r.Targets[0] == a.ID {
			pruned++
		}
	}
	// Five backups (one manual, four scheduled), two kept: three pruned.
	if n != 4 || pruned != 3 {
		t.Fatalf("%d audit records of scheduled backups (want 4) and %d of pruned ones (want 3): %+v", n, pruned, audit.Items)
	}
}

// TestScheduledBackupWaitsForBusyAppThenSkips: a run due while the app
// restarts waits for the restart and starts after it, never beside it; a
// run whose wait reaches the following run is skipped with a log line.
func TestScheduledBackupWaitsForBusyAppThenSkips(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "busy")
	if code, _ := tc.lcall("PUT", "/api/v1/apps/"+a.ID+"/backup-policy", tok["admin"], map[string]any{"schedule": "hourly"}, nil); code != 200 {
		t.Fatalf("policy: %d", code)
	}
	next := tc.nextRun(tok["alice"], a.ID)
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()
	restart := func() {
		if err := ag.sim.Store.SetFaults(pvesim.Faults{TaskMS: 700}); err != nil {
			t.Fatal(err)
		}
		if code, _ := tc.lcall("POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "restart"}, nil); code != 202 {
			t.Fatalf("restart: %d", code)
		}
	}
	restart()
	tc.advanceTo(t, next)
	// While the restart runs, no scheduled backup starts.
	for {
		var x struct{ Op string }
		_, _ = tc.lcall("GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, &x)
		if n := tc.scheduledRuns(tok["alice"], a.ID); n != 0 && x.Op == fsm.OpRestart {
			t.Fatal("a scheduled backup started during the restart")
		}
		if x.Op != fsm.OpRestart {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	waitFor(t, "the run that waited", 20*time.Second, func() bool {
		return tc.scheduledRuns(tok["alice"], a.ID) == 1 && tc.idle(tok["alice"], a.ID)
	})
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.lcall("GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, &logs)
	restartDone, runAt := -1, -1
	for i, l := range logs.Items {
		if strings.HasPrefix(l.Msg, "restart: done") {
			restartDone = i
		}
		if strings.HasPrefix(l.Msg, "scheduled backup bak_") {
			runAt = i
		}
	}
	if restartDone < 0 || runAt < restartDone {
		t.Fatalf("the scheduled backup (line %d) did not follow the end of the restart (line %d)", runAt, restartDone)
	}

	// Busy past the following run: skipped.
	next = tc.nextRun(tok["alice"], a.ID)
	restart()
	tc.advanceTo(t, next.Add(time.Hour))
	waitFor(t, "the skip", 20*time.Second, func() bool {
		var l struct{ Items []fsm.LogLine }
		_, _ = tc.lcall("GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, &l)
		for _, x := range l.Items {
			if strings.Contains(x.Msg, "skipped: restart was still in progress") {
				return true
			}
		}
		return false
	})
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	tc.waitApp(tok["alice"], a.ID, "running")
	waitFor(t, "idle", 20*time.Second, func() bool { return tc.idle(tok["alice"], a.ID) })
	if n := tc.scheduledRuns(tok["alice"], a.ID); n != 1 {
		t.Fatalf("%d scheduled runs, want 1 (the second was skipped)", n)
	}
}

// TestScheduledBackupAcrossLeaderChangeRunsOnce: a 3-server cluster; the
// leader dies once while a scheduled backup runs, and once just as a run
// comes due. Each run starts exactly once, and the next run moves on.
func TestScheduledBackupAcrossLeaderChangeRunsOnce(t *testing.T) {
	tc := newTestCluster(t, 3)
	ag := tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	tok := appUsers(t, tc)
	var a appOut
	if code, err := tc.lcall("POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "ha"}, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	if code, _ := tc.lcall("PUT", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], map[string]any{"schedule": "hourly", "retention": map[string]int{"keep_last": 1}}, nil); code != 200 {
		t.Fatalf("policy: %d", code)
	}
	defer func() {
		if t.Failed() {
			dumpLog(t, tc, tok["alice"], a.ID)
		}
	}()

	// 1. The leader dies while the scheduled backup runs.
	next := tc.nextRun(tok["alice"], a.ID)
	if err := ag.sim.Store.SetFaults(pvesim.Faults{TaskMS: 800}); err != nil {
		t.Fatal(err)
	}
	tc.advanceTo(t, next)
	waitFor(t, "the run starts", 20*time.Second, func() bool { return tc.scheduledRuns(tok["alice"], a.ID) == 1 })
	old := tc.waitLeader()
	tc.kill(old)
	tc.waitLeader()
	_ = ag.sim.Store.SetFaults(pvesim.Faults{})
	waitFor(t, "the run ends", 60*time.Second, func() bool { return tc.idle(tok["alice"], a.ID) })
	next2 := tc.nextRun(tok["alice"], a.ID)
	if !next2.Equal(next.Add(time.Hour)) {
		t.Fatalf("next run %s after the run due %s, want an hour later", next2, next)
	}
	tc.start(old)

	// 2. The leader dies just as the next run comes due.
	tc.advanceTo(t, next2)
	tc.kill(tc.waitLeader())
	tc.waitLeader()
	waitFor(t, "the second run", 60*time.Second, func() bool {
		return tc.scheduledRuns(tok["alice"], a.ID) == 2 && tc.idle(tok["alice"], a.ID)
	})
	if next3 := tc.nextRun(tok["alice"], a.ID); !next3.Equal(next2.Add(time.Hour)) {
		t.Fatalf("next run %s after the run due %s", next3, next2)
	}
	// keep_last 1: the second run's backup stays, the first is pruned
	// once, by whichever leader saw it.
	runs := tc.scheduledIDs(tok["alice"], a.ID)
	waitFor(t, "the prune", 30*time.Second, func() bool {
		bs := tc.lbackups(tok["alice"], a.ID)
		return len(bs) == 1 && tc.idle(tok["alice"], a.ID)
	})
	if n := len(runs); n != 2 {
		t.Fatalf("%d scheduled runs, want 2: %q", n, runs)
	}
	if bs := tc.lbackups(tok["alice"], a.ID); bs[0].ID != runs[1] {
		t.Fatalf("kept %+v, want the second run's backup %s", bs, runs[1])
	}
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.lcall("GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, &logs)
	pruned := 0
	for _, l := range logs.Items {
		if strings.HasPrefix(l.Msg, "prune: ") {
			pruned++
		}
	}
	if pruned != 1 {
		t.Fatalf("%d prunes in the app's log, want 1", pruned)
	}
}

// TestBackupPolicyBadInputNamesTheField: bad policies and settings are 400
// naming the field and change nothing; another user's app is 404; the
// settings are an admin's.
func TestBackupPolicyBadInputNamesTheField(t *testing.T) {
	tc, _, tok := appCluster(t)
	a := deployRunning(t, tc, tok, "bad")
	for _, tt := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"schedule": "funday 25:00"}, "schedule:"},
		{map[string]any{"mode": "fast"}, "mode:"},
		{map[string]any{"retention": map[string]any{"keep_daily": -1}}, "retention.keep_daily:"},
		{map[string]any{"retention": map[string]any{"keep_weekly": "x"}}, "retention.keep_weekly:"},
		{map[string]any{"storage": "nowhere"}, "storage:"},
		{map[string]any{"storage": "local-lvm"}, "storage:"}, // no backup content
		{map[string]any{"schedul": "daily"}, `unknown field "schedul"`},
	} {
		var prob struct{ Detail string }
		code, _ := tc.lcall("PUT", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], tt.body, &prob)
		if code != http.StatusBadRequest || !strings.Contains(prob.Detail, tt.field) {
			t.Errorf("PUT %v: %d %q, want 400 naming %s", tt.body, code, prob.Detail, tt.field)
		}
	}
	var p policyOut
	if code, _ := tc.lcall("GET", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], nil, &p); code != 200 || p.Source != "default" || p.Schedule != "" || p.Mode != "snapshot" {
		t.Fatalf("policy after refusals: %d %+v", code, p)
	}
	if code, _ := tc.lcall("GET", "/api/v1/apps/"+a.ID+"/backup-policy", tok["bob"], nil, nil); code != http.StatusNotFound {
		t.Errorf("bob reads alice's policy: %d", code)
	}
	if code, _ := tc.lcall("PUT", "/api/v1/apps/"+a.ID+"/backup-policy", tok["bob"], map[string]any{"schedule": "daily"}, nil); code != http.StatusNotFound {
		t.Errorf("bob sets alice's policy: %d", code)
	}
	for _, tt := range []struct {
		method string
		body   map[string]any
		field  string
	}{
		{"PUT", map[string]any{"timezone": "Mars/Olympus"}, "timezone:"},
		{"PATCH", map[string]any{"schedule": "*/0"}, "schedule:"},
		{"PATCH", map[string]any{"retention": map[string]any{"keep_yearly": 1000001}}, "retention.keep_yearly:"},
		{"PATCH", map[string]any{"nope": 1}, `unknown field "nope"`},
	} {
		var prob struct{ Detail string }
		code, _ := tc.lcall(tt.method, "/api/v1/settings/backups", tok["admin"], tt.body, &prob)
		if code != http.StatusBadRequest || !strings.Contains(prob.Detail, tt.field) {
			t.Errorf("%s settings %v: %d %q, want 400 naming %s", tt.method, tt.body, code, prob.Detail, tt.field)
		}
	}
	if code, _ := tc.lcall("GET", "/api/v1/settings/backups", tok["alice"], nil, nil); code != http.StatusForbidden {
		t.Errorf("a user reads the backup settings: %d", code)
	}
	// PATCH changes one field and keeps the others; the default applies to
	// apps without their own policy.
	var s struct {
		Schedule, Mode, Timezone string
		Retention                map[string]int
	}
	if code, _ := tc.lcall("PUT", "/api/v1/settings/backups", tok["admin"], map[string]any{"schedule": "sat 02:00", "timezone": "Europe/Berlin", "retention": map[string]int{"keep_daily": 7}}, &s); code != 200 {
		t.Fatalf("PUT settings: %d", code)
	}
	if code, _ := tc.lcall("PATCH", "/api/v1/settings/backups", tok["admin"], map[string]any{"mode": "stop"}, &s); code != 200 || s.Schedule != "sat 02:00" || s.Mode != "stop" || s.Timezone != "Europe/Berlin" || s.Retention["keep_daily"] != 7 {
		t.Fatalf("PATCH settings: %d %+v", code, s)
	}
	if code, _ := tc.lcall("GET", "/api/v1/apps/"+a.ID+"/backup-policy", tok["alice"], nil, &p); code != 200 || p.Source != "default" || p.Schedule != "sat 02:00" || p.Mode != "stop" {
		t.Fatalf("policy from the default: %d %+v", code, p)
	}
	next := tc.nextRun(tok["alice"], a.ID)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if nb := next.In(berlin); nb.Weekday() != time.Saturday || nb.Hour() != 2 || nb.Minute() != 0 {
		t.Fatalf("next run %s is not a Saturday 02:00 in Berlin", nb)
	}
}
