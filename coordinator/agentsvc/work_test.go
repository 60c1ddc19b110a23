package agentsvc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// work opens a Work stream for a's node after index; it ends when the test
// does. Its error arrives on the returned channel.
func (h *harness) work(a *agent, after uint64) (*workStream, <-chan error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.mustAuthed(a, pb.Agent_Work_FullMethodName))
	ws := &workStream{ctx: ctx, events: make(chan *pb.WorkEvent, 64)}
	errc, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		errc <- h.s.Work(&pb.WorkRequest{Node: a.node, AfterIndex: after}, ws)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
	return ws, errc
}

// drain is what the stream has sent once every goroutine is blocked
// (inside a synctest bubble).
func drain(ws *workStream) []*pb.WorkEvent {
	synctest.Wait()
	var out []*pb.WorkEvent
	for {
		select {
		case ev := <-ws.events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// describe is a stream's events in short: +id for a task, -id for a
// cancel, | for the end of the snapshot.
func describe(evs []*pb.WorkEvent) string {
	var parts []string
	for _, ev := range evs {
		switch e := ev.Event.(type) {
		case *pb.WorkEvent_Task:
			parts = append(parts, "+"+e.Task.Id)
		case *pb.WorkEvent_Cancel:
			parts = append(parts, "-"+e.Cancel.Id)
		case *pb.WorkEvent_SnapshotDone:
			parts = append(parts, "|")
		}
	}
	return strings.Join(parts, " ")
}

func (h *harness) submit(id, node string) fsm.Task {
	h.t.Helper()
	tk, err := h.s.Submit(context.Background(), fsm.Task{ID: id, Node: node, Kind: taskspec.Exec}, map[string]string{"cmd": id})
	if err != nil {
		h.t.Fatalf("submit %s: %v", id, err)
	}
	return tk
}

func (h *harness) expire(id string) {
	h.t.Helper()
	tk := h.task(id)
	h.apply(fsm.Command{Type: fsm.CmdExpireTask, RequestID: "expire/" + id, ExpireTask: &fsm.ExpireTaskCmd{
		ID: id, Fence: tk.Fence, Kind: fsm.TaskTimeout, Reason: "timeout", At: time.Now()}})
}

// TestWorkHandsOutTasksInFenceOrder: a stream sends the node's pending
// tasks, the end of the snapshot, then each new task and each task fenced
// since (to stop); an agent resuming after an index gets only what came
// after it; another node's tasks never reach it.
func TestWorkHandsOutTasksInFenceOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		h.join("pve2", h.token(""))
		h.submit("t1", "pve1")
		h.submit("t2", "pve1")
		h.submit("other", "pve2")
		ws, _ := h.work(a, 0)
		evs := drain(ws)
		if got := describe(evs); got != "+t1 +t2 |" {
			t.Fatalf("first events %q, want the pending tasks then the marker", got)
		}
		task := evs[0].GetTask()
		if task.Fence != h.task("t1").Fence || evs[0].Index != task.Fence || task.Attempt != 1 || string(task.SpecJson) != `{"cmd":"t1"}` {
			t.Fatalf("t1 delivered as %+v at index %d", task, evs[0].Index)
		}
		mark := evs[2].Index
		h.submit("t3", "pve1")
		h.expire("t1")
		h.submit("late", "pve2")
		evs = drain(ws)
		if got := describe(evs); got != "+t3 -t1" {
			t.Fatalf("later events %q, want the new task then t1's cancel", got)
		}
		if c := evs[1].GetCancel(); c.Fence != h.task("t1").Fence || c.Reason != "timeout" {
			t.Fatalf("cancel %+v", c)
		}
		resume := evs[0].Index // the agent saw t3 and lost the stream
		ws2, _ := h.work(a, resume)
		if got := describe(drain(ws2)); got != "-t1 |" {
			t.Fatalf("resumed after t3: %q, want only t1's cancel", got)
		}
		ws3, _ := h.work(a, mark)
		if got := describe(drain(ws3)); got != "+t3 -t1 |" {
			t.Fatalf("resumed after the first marker: %q", got)
		}
	})
}

// TestWorkStreamEndsWhenLeadershipIsLostOrTheNodeRemoved: a stream notices
// a lost leadership within its recheck (no state change needed) and a
// removed node at once; a node cannot open another node's stream.
func TestWorkStreamEndsWhenLeadershipIsLostOrTheNodeRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		b := h.join("pve2", h.token(""))
		ctx := h.mustAuthed(a, pb.Agent_Work_FullMethodName)
		err := h.s.Work(&pb.WorkRequest{Node: "pve2"}, &workStream{ctx: ctx, events: make(chan *pb.WorkEvent, 1)})
		wantCode(t, "pve1 asking for pve2's work", err, codes.PermissionDenied)

		_, errA := h.work(a, 0)
		_, errB := h.work(b, 0)
		synctest.Wait()
		h.apply(fsm.Command{Type: fsm.CmdRemoveNode, RequestID: "rm", RemoveNode: &fsm.RemoveNodeCmd{Node: "pve2"}})
		synctest.Wait()
		select {
		case err := <-errB:
			wantCode(t, "the stream of a removed node", err, codes.PermissionDenied)
		default:
			t.Fatal("a removed node's stream is still open")
		}
		h.b.follower.Store(true)
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		select {
		case err := <-errA:
			if !proto.IsNotLeader(err) {
				t.Fatalf("stream after leadership was lost: %v", err)
			}
		default:
			t.Fatal("the stream outlived the leadership")
		}
	})
}

// TestReportCompletesOwnTasksUnderTheirFence: a result with the task's
// fence completes it once; a stale fence or an unknown task is refused
// (and changes nothing); a batch naming another node's task is refused
// whole; a follower sends the agent to the leader.
func TestReportCompletesOwnTasksUnderTheirFence(t *testing.T) {
	h := newHarness(t, func() time.Time { return t0 })
	a := h.join("pve1", h.token(""))
	h.join("pve2", h.token(""))
	t1 := h.submit("t1", "pve1")
	t2 := h.submit("t2", "pve1")
	h.submit("theirs", "pve2")
	h.expire("t2") // t2's agent is told to stop; its late result is stale
	ctx := h.mustAuthed(a, pb.Agent_Report_FullMethodName)
	out, _ := json.Marshal(taskspec.Output{Stdout: "hi"})
	result := func(id string, fence uint64, ok bool) *pb.TaskEvent {
		return &pb.TaskEvent{TaskId: id, Fence: fence, Event: &pb.TaskEvent_Result{Result: &pb.Result{Ok: ok, OutputJson: out}}}
	}
	resp, err := h.s.Report(ctx, &pb.ReportRequest{Node: "pve1", Heartbeat: &pb.Heartbeat{}, Events: []*pb.TaskEvent{
		{TaskId: "t1", Event: &pb.TaskEvent_Log{Log: "step one " + strings.Repeat("x", maxLogLine)}},
		{TaskId: "t1", Event: &pb.TaskEvent_Progress{Progress: &pb.Progress{Step: "pull"}}},
		result("t1", t1.Fence, true),
		result("t2", t2.Fence, true),
		result("gone", 7, true),
		{TaskId: "gone", Event: &pb.TaskEvent_Log{Log: "dropped"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(resp.Refused, ",") != "t2,gone" {
		t.Fatalf("refused %v, want the stale and the unknown result", resp.Refused)
	}
	if resp.HeartbeatIntervalMs != 2000 || len(resp.Servers) != 0 {
		t.Fatalf("response %+v", resp)
	}
	if tk := h.task("t1"); tk.State != fsm.TaskSucceeded || string(tk.Output) != string(out) || !tk.DoneAt.Equal(t0) {
		t.Fatalf("t1 %+v", tk)
	}
	if tk := h.task("t2"); tk.State != fsm.TaskFailed || tk.ErrorKind != fsm.TaskTimeout {
		t.Fatalf("t2 %s %s: a stale result changed it", tk.State, tk.ErrorKind)
	}
	logs := h.s.TaskLog("t1")
	if len(logs) != 2 || !strings.HasSuffix(logs[0], " …") || len(logs[0]) > maxLogLine+len(" …") || logs[1] != "progress: pull" {
		t.Fatalf("t1's log %q", logs)
	}
	if got := h.s.TaskLog("gone"); len(got) != 0 {
		t.Fatalf("an unknown task's log kept: %q", got)
	}
	// A repeated result of the same incarnation changes nothing.
	if resp, err := h.s.Report(ctx, &pb.ReportRequest{Node: "pve1", Events: []*pb.TaskEvent{result("t1", t1.Fence, false)}}); err != nil || len(resp.Refused) != 0 {
		t.Fatalf("a repeated result: %v %v", resp, err)
	}
	if tk := h.task("t1"); tk.State != fsm.TaskSucceeded {
		t.Fatalf("t1 %s after a repeated result", tk.State)
	}

	// A failure without a reason still reads as a failure.
	t4 := h.submit("t4", "pve1")
	if _, err := h.s.Report(ctx, &pb.ReportRequest{Node: "pve1", Events: []*pb.TaskEvent{
		{TaskId: "t4", Fence: t4.Fence, Event: &pb.TaskEvent_Result{Result: &pb.Result{}}}}}); err != nil {
		t.Fatal(err)
	}
	if tk := h.task("t4"); tk.State != fsm.TaskFailed || tk.Error == "" {
		t.Fatalf("a failure without a reason: %s %q", tk.State, tk.Error)
	}

	t3 := h.submit("t3", "pve1")
	_, err = h.s.Report(ctx, &pb.ReportRequest{Node: "pve1", Events: []*pb.TaskEvent{
		result("t3", t3.Fence, true), {TaskId: "theirs", Event: &pb.TaskEvent_Log{Log: "x"}}}})
	wantCode(t, "a batch naming another node's task", err, codes.PermissionDenied)
	if tk := h.task("t3"); tk.State != fsm.TaskPending {
		t.Fatalf("t3 %s: part of a refused batch applied", tk.State)
	}
	_, err = h.s.Report(ctx, &pb.ReportRequest{Node: "pve2"})
	wantCode(t, "pve1 reporting as pve2", err, codes.PermissionDenied)
	h.b.follower.Store(true)
	if _, err = h.s.Report(ctx, &pb.ReportRequest{Node: "pve1"}); !proto.IsNotLeader(err) {
		t.Fatalf("a report to a follower: %v", err)
	}
}

// TestAwaitReturnsOnceTheTaskEnds: Await blocks while the task is pending
// and returns it once it ends; an unknown task is NotFound.
func TestAwaitReturnsOnceTheTaskEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.join("pve1", h.token(""))
		h.submit("t1", "pve1")
		got := make(chan fsm.Task, 1)
		go func() {
			tk, err := h.s.Await(context.Background(), "t1")
			if err != nil {
				t.Error(err)
			}
			got <- tk
		}()
		synctest.Wait()
		select {
		case tk := <-got:
			t.Fatalf("Await returned a pending task: %+v", tk)
		default:
		}
		h.expire("t1")
		if tk := <-got; tk.State != fsm.TaskFailed {
			t.Fatalf("Await returned %s", tk.State)
		}
		if _, err := h.s.Await(context.Background(), "nope"); err == nil {
			t.Fatal("an unknown task was awaited")
		}
	})
}
