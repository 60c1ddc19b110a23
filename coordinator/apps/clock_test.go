package apps

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
)

// stampedTasks stamps each task with its creation time, as the agent
// service does, before fakeTasks records it.
type stampedTasks struct{ *fakeTasks }

func (st stampedTasks) Submit(ctx context.Context, t fsm.Task, spec any) (fsm.Task, error) {
	t.CreatedAt = time.Now()
	return st.fakeTasks.Submit(ctx, t, spec)
}

// runController runs h's controller loop until the test ends.
func (h *harness) runController() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.c.Run(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (h *harness) currentTask(id string) (fsm.Task, bool) {
	a := h.app(id)
	var tk fsm.Task
	var ok bool
	h.b.FSM().Read(func(s *fsm.State) { tk, ok = s.Task(a.TaskID) })
	return tk, ok
}

// TestRunRetriesAfterTheDelayAndExpiresOverdueTasks drives the
// controller's loop in a synctest bubble: a failed attempt is retried only
// once the policy's delay has passed, an attempt whose task the agent
// never finishes is fenced at its deadline and counts as failed, and the
// next attempt that succeeds ends the operation.
func TestRunRetriesAfterTheDelayAndExpiresOverdueTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.c = New(Config{Backend: h.b, Tasks: stampedTasks{h.tasks}, NewID: h.c.cfg.NewID,
			Policy: &Policy{Base: 2 * time.Second, Max: 30 * time.Second, Attempts: 3, Timeout: time.Minute}})
		h.running("app1", "web1")
		start := time.Now()
		h.apply(fsm.Command{Type: fsm.CmdAppAction, RequestID: "stop", AppAction: &fsm.AppActionCmd{ID: "app1", Op: fsm.OpStop, At: start}})
		h.runController()
		synctest.Wait()
		first, ok := h.currentTask("app1")
		if kind, _ := stStop.task(h.app("app1"), catalog.Entry{}, fsm.NetworkSettings{}); !ok || first.Kind != kind || first.Attempt != 1 {
			t.Fatalf("no stop task submitted: %+v", first)
		}
		h.apply(fsm.Command{Type: fsm.CmdCompleteTask, RequestID: "fail/" + first.ID, CompleteTask: &fsm.CompleteTaskCmd{
			ID: first.ID, Node: first.Node, Fence: first.Fence, Error: "the container is locked", At: time.Now()}})
		synctest.Wait()
		if a := h.app("app1"); a.Attempt != 2 || a.TaskID != "" || a.Status != fsm.AppStopping {
			t.Fatalf("after a failed attempt: attempt %d task %q status %s", a.Attempt, a.TaskID, a.Status)
		}
		time.Sleep(2*time.Second - time.Millisecond)
		synctest.Wait()
		if a := h.app("app1"); a.TaskID != "" {
			t.Fatalf("retried %v after the failure, before the 2 s delay", time.Since(start))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		second, ok := h.currentTask("app1")
		if !ok || second.ID == first.ID {
			t.Fatalf("not retried once the delay passed (task %+v)", second)
		}
		// The agent never answers: the attempt is fenced at its deadline.
		time.Sleep(time.Minute - time.Second)
		synctest.Wait()
		if tk, _ := h.currentTask("app1"); tk.ID != second.ID || tk.State != fsm.TaskPending {
			t.Fatalf("before its deadline the attempt is %s (task %s)", tk.State, tk.ID)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		var fenced fsm.Task
		h.b.FSM().Read(func(s *fsm.State) { fenced, _ = s.Task(second.ID) })
		if fenced.State != fsm.TaskFailed || fenced.ErrorKind != fsm.TaskTimeout {
			t.Fatalf("an overdue task is %s (%s), want failed by timeout", fenced.State, fenced.ErrorKind)
		}
		time.Sleep(4 * time.Second) // the third attempt's delay
		synctest.Wait()
		if a := h.app("app1"); a.Attempt != 3 || a.TaskID == "" {
			t.Fatalf("third attempt: %d, task %q", a.Attempt, a.TaskID)
		}
		h.complete("app1", true, "{}")
		synctest.Wait()
		if a := h.app("app1"); a.Op != "" || a.Status != fsm.AppStopped {
			t.Fatalf("after the third attempt succeeded: op %q status %s", a.Op, a.Status)
		}
	})
}

// TestUpdaterLooksOncePerPeriodOfTheControllersClock: the updater runs at
// most once per UpdateEvery of the controller's clock, so a newer catalog
// version is noticed at the next period, not before.
func TestUpdaterLooksOncePerPeriodOfTheControllersClock(t *testing.T) {
	h := newHarness(t)
	now := t0
	h.c.cfg.Now = func() time.Time { return now }
	h.c.cfg.UpdateEvery = time.Minute
	h.running("app1", "web1")
	notify := fsm.AutoUpdateNotify
	h.apply(fsm.Command{Type: fsm.CmdSetUpdatePolicy, RequestID: "pol", SetUpdatePolicy: &fsm.SetUpdatePolicyCmd{ID: "app1", AutoUpdate: &notify, At: t0}})
	notified := func() string {
		if u := h.app("app1").Updates; u != nil {
			return u.Notified
		}
		return ""
	}
	h.c.autoUpdates(context.Background()) // looks: nothing newer
	e := catalog.Entry{ID: "web", Name: "Web", Version: "2", Template: "local:vztmpl/debian-12.tar.zst",
		Compose: "services: {}\n", Ports: []catalog.Port{{Name: "ui", Internal: 80, Protocol: "tcp"}}}
	h.apply(fsm.Command{Type: fsm.CmdSetCatalog, RequestID: "cat2", SetCatalog: &fsm.CatalogState{Entries: []catalog.Entry{e}}})
	now = now.Add(59 * time.Second)
	h.c.autoUpdates(context.Background())
	if got := notified(); got != "" {
		t.Fatalf("noticed %q within the period", got)
	}
	now = now.Add(time.Second)
	h.c.autoUpdates(context.Background())
	if got := notified(); got != "2" {
		t.Fatalf("notice %q after a period, want 2", got)
	}
}
