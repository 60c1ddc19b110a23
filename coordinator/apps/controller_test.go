package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/fsm/fsmtest"
	"github.com/proximity-ve/proximity/internal/catalog"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeTasks records the tasks the controller submits, as the agent
// service does, without running them.
type fakeTasks struct {
	b     *fsmtest.Backend
	specs map[string]any
}

func (ft *fakeTasks) Submit(ctx context.Context, t fsm.Task, spec any) (fsm.Task, error) {
	if spec != nil {
		raw, err := json.Marshal(spec)
		if err != nil {
			return fsm.Task{}, err
		}
		t.Spec = raw
	}
	ft.specs[t.ID] = spec
	res, err := ft.b.Propose(ctx, fsm.Command{Type: fsm.CmdCreateTask, RequestID: "task/" + t.ID, CreateTask: &t})
	if err != nil {
		return fsm.Task{}, err
	}
	if err := res.Err(); err != nil {
		return fsm.Task{}, err
	}
	return *res.Task, nil
}

type harness struct {
	t     *testing.T
	b     *fsmtest.Backend
	tasks *fakeTasks
	c     *Controller
}

// newHarness is a controller over a state with the catalog entry "web",
// the ready node pve1 and the user alice; one attempt per stage, so a
// failure ends its operation at once.
func newHarness(t *testing.T) *harness {
	t.Helper()
	b := fsmtest.New()
	h := &harness{t: t, b: b, tasks: &fakeTasks{b: b, specs: map[string]any{}}}
	var ids atomic.Int64
	newID := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, ids.Add(1)) }
	h.c = New(Config{Backend: b, Tasks: h.tasks, Now: func() time.Time { return t0 }, NewID: newID,
		Policy: &Policy{Base: time.Millisecond, Max: time.Millisecond, Attempts: 1, Timeout: time.Minute}})
	h.c.notBefore, h.c.cleanupTry, h.c.waitLogged = map[string]time.Time{}, map[string]int{}, map[string]bool{}
	entry := catalog.Entry{ID: "web", Name: "Web", Version: "1", Template: "local:vztmpl/debian-12.tar.zst",
		Compose: "services: {}\n", Ports: []catalog.Port{{Name: "ui", Internal: 80, Protocol: "tcp"}}}
	hash := strings.Repeat("a", 64)
	for _, c := range []fsm.Command{
		{Type: fsm.CmdSetCatalog, RequestID: "cat", SetCatalog: &fsm.CatalogState{Entries: []catalog.Entry{entry}}},
		{Type: fsm.CmdJoinToken, RequestID: "t", JoinToken: &fsm.JoinToken{ID: "jt", Hash: hash, ExpiresAt: t0.Add(time.Hour)}},
		{Type: fsm.CmdJoinNode, RequestID: "j", JoinNode: &fsm.JoinNodeCmd{TokenHash: hash, Node: "pve1", At: t0}},
		{Type: fsm.CmdCreateUser, RequestID: "alice", CreateUser: &fsm.CreateUserCmd{User: fsm.User{ID: "alice", Name: "alice", Role: fsm.RoleUser}}},
	} {
		h.apply(c)
	}
	return h
}

func (h *harness) apply(c fsm.Command) fsm.Result {
	h.t.Helper()
	res, _ := h.b.Propose(context.Background(), c)
	if err := res.Err(); err != nil {
		h.t.Fatalf("%v: %v", c.Type, err)
	}
	return res
}

func (h *harness) app(id string) fsm.App {
	h.t.Helper()
	return fsmtest.Get(h.t, h.b.FSM(), "app "+id, func(s *fsm.State) (fsm.App, bool) { return s.App(id) })
}

// advance runs one step of the app's operation, as the controller's loop
// does.
func (h *harness) advance(id string) fsm.App {
	h.t.Helper()
	if err := h.c.advance(context.Background(), h.app(id)); err != nil {
		h.t.Fatalf("advance %s: %v", id, err)
	}
	return h.app(id)
}

// complete ends the app's current task with the given output.
func (h *harness) complete(id string, ok bool, output string) {
	h.t.Helper()
	a := h.app(id)
	var task fsm.Task
	h.b.FSM().Read(func(s *fsm.State) { task, _ = s.Task(a.TaskID) })
	if task.ID == "" {
		h.t.Fatalf("app %s has no task (step %q)", id, a.Step)
	}
	h.apply(fsm.Command{Type: fsm.CmdCompleteTask, RequestID: "done/" + task.ID, CompleteTask: &fsm.CompleteTaskCmd{
		ID: task.ID, Node: task.Node, Fence: task.Fence, OK: ok, Output: json.RawMessage(output), At: t0}})
}

func (h *harness) deploy(id, host string) {
	h.apply(fsm.Command{Type: fsm.CmdCreateApp, RequestID: "create/" + id, CreateApp: &fsm.CreateAppCmd{
		App:     fsm.App{ID: id, Owner: "alice", CatalogID: "web", CreatedAt: t0},
		Reserve: fsm.ReserveCmd{ID: "res-" + id, Hostname: host, Node: "pve1", PublicPorts: 1, Owner: "app:" + id, CreatedAt: t0}}})
}

func (h *harness) running(id, host string) {
	h.deploy(id, host)
	h.apply(fsm.Command{Type: fsm.CmdAppStep, RequestID: "deployed/" + id, AppStep: &fsm.AppStepCmd{ID: id, ExpectOp: fsm.OpDeploy,
		Done: true, Status: fsm.AppRunning, VMID: 100, At: t0}})
}

// A deploy whose catalog entry went away (its source removed) between the
// request and the create ends in error with the reason and sends Proxmox
// nothing, instead of a create with an empty template.
func TestDeployWithoutItsCatalogEntryFailsInsteadOfSendingAnEmptyTemplate(t *testing.T) {
	h := newHarness(t)
	h.deploy("app1", "web1")
	h.apply(fsm.Command{Type: fsm.CmdSetCatalog, RequestID: "cat2", SetCatalog: &fsm.CatalogState{Entries: []catalog.Entry{{ID: "other", Name: "Other", Version: "1"}}}})
	a := h.advance("app1") // the create stage starts
	if a.Step != stCreate.name {
		t.Fatalf("step %q, want create", a.Step)
	}
	a = h.advance("app1")
	if len(h.tasks.specs) != 0 {
		t.Fatalf("tasks were submitted: %v", h.tasks.specs)
	}
	if a.Step != cleanupStage || !strings.Contains(a.Error, `catalog entry "web" is not in the catalog`) {
		t.Fatalf("step %q error %q, want cleanup with the reason", a.Step, a.Error)
	}
}

// A deploy whose catalog entry moved to another version (a reload) before
// its create, compose or env stage fails and is undone instead of making
// a container of a version the registry does not record (found by the
// nemesis, seeds 95 and 96).
func TestDeployAcrossACatalogReloadFailsInsteadOfRunningAnotherVersion(t *testing.T) {
	for _, at := range []string{stCreate.name, stCompose.name, stEnv.name} {
		t.Run(at, func(t *testing.T) {
			h := newHarness(t)
			h.deploy("app1", "web1")
			if v := h.app("app1").CatalogVersion; v != "1" {
				t.Fatalf("the deploy records version %q, want 1", v)
			}
			a := h.advance("app1")
			for a.Step != at {
				a = h.advance("app1") // the stage's task is submitted
				h.complete("app1", true, `{"stdout":"inet 10.0.0.5/24"}`)
				a = h.advance("app1")
				if a.Op != fsm.OpDeploy || a.Step == cleanupStage {
					t.Fatalf("before %s: op %q step %q error %q", at, a.Op, a.Step, a.Error)
				}
			}
			submitted := len(h.tasks.specs)
			e := catalog.Entry{ID: "web", Name: "Web", Version: "2", Template: "local:vztmpl/debian-12.tar.zst",
				Compose: "services: {new: {}}\n", Ports: []catalog.Port{{Name: "ui", Internal: 80, Protocol: "tcp"}}}
			h.apply(fsm.Command{Type: fsm.CmdSetCatalog, RequestID: "cat2", SetCatalog: &fsm.CatalogState{Entries: []catalog.Entry{e}}})
			a = h.advance("app1")
			if len(h.tasks.specs) != submitted {
				t.Fatalf("a task was submitted at %s after the entry moved", at)
			}
			if a.Step != cleanupStage || !strings.Contains(a.Error, "now offers version 2, not the 1") {
				t.Fatalf("step %q error %q, want cleanup with the reason", a.Step, a.Error)
			}
		})
	}
}

// A backup recorded only with its archive: a task that succeeded without
// naming one fails the backup instead of recording an empty volid.
func TestBackupWithoutAnArchiveIsFailedNotReady(t *testing.T) {
	h := newHarness(t)
	h.running("app1", "web1")
	h.apply(fsm.Command{Type: fsm.CmdAppAction, RequestID: "bk", AppAction: &fsm.AppActionCmd{ID: "app1", Op: fsm.OpBackup, BackupID: "bkp1", At: t0}})
	h.advance("app1") // the backup stage starts
	h.advance("app1") // its task is submitted
	h.complete("app1", true, `{"stdout":"INFO: done"}`)
	a := h.advance("app1")
	var b fsm.Backup
	h.b.FSM().Read(func(s *fsm.State) { b, _ = s.Backup("bkp1") })
	if b.Status != fsm.BackupFailed || b.Volid != "" || !strings.Contains(b.Error, "vzdump reported no archive") {
		t.Fatalf("backup %+v, want failed with the reason", b)
	}
	if a.Status != fsm.AppRunning || a.Op != "" {
		t.Fatalf("app %s op %q, want running and idle", a.Status, a.Op)
	}
}

// An output that does not decode is a failure, never an empty result taken
// as success.
func TestUnreadableTaskOutputFailsTheStage(t *testing.T) {
	h := newHarness(t)
	h.running("app1", "web1")
	h.apply(fsm.Command{Type: fsm.CmdAppAction, RequestID: "bk", AppAction: &fsm.AppActionCmd{ID: "app1", Op: fsm.OpBackup, BackupID: "bkp1", At: t0}})
	h.advance("app1")
	h.advance("app1")
	h.complete("app1", true, `{"volid": 42}`)
	h.advance("app1")
	var b fsm.Backup
	h.b.FSM().Read(func(s *fsm.State) { b, _ = s.Backup("bkp1") })
	if b.Status != fsm.BackupFailed || !strings.Contains(b.Error, "the node's answer could not be read") {
		t.Fatalf("backup %+v, want failed: the answer could not be read", b)
	}
}

// A task that failed without a reason is a failure, never a success: the
// backup fails with a reason instead of being recorded ready.
func TestTaskFailedWithoutAReasonIsAFailure(t *testing.T) {
	h := newHarness(t)
	h.running("app1", "web1")
	h.apply(fsm.Command{Type: fsm.CmdAppAction, RequestID: "bk", AppAction: &fsm.AppActionCmd{ID: "app1", Op: fsm.OpBackup, BackupID: "bkp1", At: t0}})
	h.advance("app1")
	h.advance("app1")
	h.complete("app1", false, `{"volid":"local:backup/vzdump-lxc-100.tar.zst"}`)
	h.advance("app1")
	var b fsm.Backup
	h.b.FSM().Read(func(s *fsm.State) { b, _ = s.Backup("bkp1") })
	if b.Status != fsm.BackupFailed || b.Volid != "" || !strings.Contains(b.Error, "without a reason") {
		t.Fatalf("backup %+v, want failed with a reason", b)
	}
}

// A clone whose source VMID is not a number never sends a task for VMID 0.
func TestCloneWithABadSourceVMIDFailsWithoutATask(t *testing.T) {
	h := newHarness(t)
	h.running("src", "web1")
	h.apply(fsm.Command{Type: fsm.CmdCloneApp, RequestID: "clone", CloneApp: &fsm.CloneAppCmd{
		App:      fsm.App{ID: "cl1", Owner: "alice", CatalogID: "web", CreatedAt: t0},
		SourceID: "src",
		Reserve:  fsm.ReserveCmd{ID: "res-cl1", Hostname: "web2", Node: "pve1", PublicPorts: 1, Owner: "app:cl1", CreatedAt: t0}}})
	a := h.app("cl1")
	a.OpArgs["source_vmid"] = "not-a-vmid" // as a damaged record would have it
	if err := h.c.advance(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	a = h.app("cl1")
	a.OpArgs["source_vmid"] = "not-a-vmid"
	if err := h.c.advance(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	for id, spec := range h.tasks.specs {
		t.Errorf("task %s submitted: %v", id, spec)
	}
	if a = h.app("cl1"); a.Step != cleanupStage || !strings.Contains(a.Error, "is not a VMID") {
		t.Fatalf("step %q error %q", a.Step, a.Error)
	}
}
