package fsm

import (
	"slices"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// TestReconfigureAppliesSettingsOnlyWhenItSucceeds protects an app's
// recorded settings: a reconfigure is refused while another operation
// runs, on an app that is neither running nor stopped, or with nothing to
// change; its changes wait in PendingSettings and
// become the app's settings only when it ends without error.
func TestReconfigureAppliesSettingsOnlyWhenItSucceeds(t *testing.T) {
	f := quotaFSM(t, nil, nil)
	app := mustOK(t, apply(t, f, createAppCmd("a1", "alice", "web", catalog.Resources{Cores: 1, MemoryMB: 256, DiskGB: 1}))[0]).App
	reconf := func(rid string, ch *SettingsChange) Result {
		return apply(t, f, Command{Type: CmdAppAction, RequestID: rid, AppAction: &AppActionCmd{ID: app.ID, Op: OpReconfigure, Owner: "alice", At: t0, Settings: ch}})[0]
	}
	done := func(rid, op, errText string, status ...string) {
		st := AppRunning
		if len(status) > 0 {
			st = status[0]
		}
		var a App
		f.Read(func(s *State) { a, _ = s.App(app.ID) })
		mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: rid, AppStep: &AppStepCmd{ID: app.ID, ExpectOp: op, ExpectStep: a.Step, ExpectTask: a.TaskID,
			Done: true, Status: st, Error: errText, At: t0}})[0])
	}
	current := func() App {
		var a App
		f.Read(func(s *State) { a, _ = s.App(app.ID) })
		return a
	}
	change := &SettingsChange{Settings: map[string]string{"A": "1"}, Sealed: map[string]*secrets.Sealed{"S": {KeyID: "k"}}}

	mustKind(t, reconf("busy", change), problem.Conflict) // deploying
	done("deployed", OpDeploy, "")
	mustKind(t, reconf("empty", &SettingsChange{}), problem.Invalid)
	mustKind(t, reconf("nil", nil), problem.Invalid)

	r := mustOK(t, reconf("r1", change))
	if r.App.Status != AppReconfiguring || r.App.PendingSettings == nil || len(r.App.Settings) != 0 {
		t.Fatalf("reconfigure started: %+v", r.App)
	}
	done("failed", OpReconfigure, "reconfigure failed: health")
	if a := current(); len(a.Settings) != 0 || len(a.SealedSettings) != 0 || a.PendingSettings != nil || a.Status != AppRunning {
		t.Fatalf("a failed reconfigure changed the settings: %+v", a)
	}

	mustOK(t, reconf("r2", change))
	done("ok", OpReconfigure, "")
	a := current()
	if a.Settings["A"] != "1" || a.SealedSettings["S"] == nil || !slices.Equal(a.SecretSettings, []string{"S"}) || a.PendingSettings != nil || a.Error != "" {
		t.Fatalf("after a reconfigure that succeeded: %+v", a)
	}

	// Only a running or stopped app: one in error is refused.
	mustOK(t, reconf("r3", change))
	done("rollback failed", OpReconfigure, "rollback-env failed", AppError)
	mustKind(t, reconf("in error", change), problem.Conflict)
}
