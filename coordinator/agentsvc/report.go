package agentsvc

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// Report takes a batch: the heartbeat re-arms the node's TTL, the
// inventory updates foreign VMIDs, and results complete tasks under their
// fencing tokens. A node reports only on its own tasks: a batch with an
// event for another node's task is refused whole (PERMISSION_DENIED) and
// changes nothing.
func (s *Service) Report(ctx context.Context, req *pb.ReportRequest) (*pb.ReportResponse, error) {
	if err := speaksFor(ctx, req.Node); err != nil {
		return nil, err
	}
	if err := s.leaderOnly(ctx); err != nil {
		return nil, err
	}
	own, err := s.ownTasks(req.Node, req.Events)
	if err != nil {
		return nil, err
	}
	s.live.seen(req.Node, req.Heartbeat)
	if req.Inventory != nil {
		s.live.inventory(ctx, req.Node, req.Inventory)
	}
	resp := &pb.ReportResponse{Servers: s.servers(), HeartbeatIntervalMs: uint32(s.cfg.Heartbeat / time.Millisecond)}
	for _, ev := range req.Events {
		switch e := ev.Event.(type) {
		case *pb.TaskEvent_Log:
			if own[ev.TaskId] {
				s.live.taskLog(ev.TaskId, e.Log)
			}
		case *pb.TaskEvent_Progress:
			if own[ev.TaskId] {
				s.live.taskLog(ev.TaskId, "progress: "+e.Progress.Step)
			}
		case *pb.TaskEvent_Result:
			if !own[ev.TaskId] {
				resp.Refused = append(resp.Refused, ev.TaskId)
				continue
			}
			if refused, err := s.result(ctx, req.Node, ev.TaskId, ev.Fence, e.Result); err != nil {
				return nil, err
			} else if refused {
				resp.Refused = append(resp.Refused, ev.TaskId)
			}
		}
	}
	return resp, nil
}

// ownTasks sorts the tasks a batch speaks of: those of node's are in the
// answer; any other node's task refuses the batch. A task the leader does
// not know (finished and pruned since) is neither: its log lines are
// dropped and its result is refused as the FSM would refuse it, without a
// proposal. The leader knows every task an agent can have been given: it
// applied every earlier term's entries before it began to lead, and a
// task is streamed only once applied.
func (s *Service) ownTasks(node string, events []*pb.TaskEvent) (map[string]bool, error) {
	own := map[string]bool{}
	other := ""
	s.b.FSM().Read(func(st *fsm.State) {
		for _, ev := range events {
			n, ok := st.TaskNode(ev.TaskId)
			switch {
			case !ok:
			case n == node:
				own[ev.TaskId] = true
			default:
				other = ev.TaskId
				return
			}
		}
	})
	if other != "" {
		if s.logs.allow() {
			s.log.Warn("report refused: it speaks of another node's task", "node", node, "task", other)
		}
		return nil, status.Errorf(codes.PermissionDenied, "task %s is not node %s's; the report is refused", other, node)
	}
	return own, nil
}

// result records one task result under its fencing token. (A create whose
// VMID was taken behind Proximity's back is reissued by the FSM in the same
// command; see fsm.CompleteTaskCmd.)
func (s *Service) result(ctx context.Context, node, id string, fence uint64, r *pb.Result) (refused bool, err error) {
	reason := r.Error
	if !r.Ok && reason == "" {
		// The controller reads a failure by its reason: a failure without
		// one must not pass for a success.
		reason = "the task failed; the agent gave no reason"
	}
	cmd := fsm.Command{Type: fsm.CmdCompleteTask, RequestID: s.cfg.NewID("done_"), CompleteTask: &fsm.CompleteTaskCmd{
		ID: id, Node: node, Fence: fence, OK: r.Ok, Error: reason, ErrorKind: taskspec.Failure(r.ErrorKind), At: s.cfg.Now(),
	}}
	if len(r.OutputJson) > 0 {
		cmd.CompleteTask.Output = json.RawMessage(r.OutputJson)
	}
	res, err := s.propose(ctx, cmd)
	switch {
	case err == nil:
		if t := res.Task; t != nil && t.State == fsm.TaskPending {
			s.log.Warn("VMID taken outside Proximity: marked foreign, the create goes on with another", "task", id, "vmid", t.VMID)
		}
		return false, nil
	case problem.Is(err, problem.Conflict), problem.Is(err, problem.NotFound):
		s.log.Info("task result refused", "task", id, "node", node, "fence", fence, "reason", err)
		return true, nil
	}
	return false, grpcErr(err)
}
