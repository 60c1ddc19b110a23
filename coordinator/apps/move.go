package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// A move (fsm.OpMove) restores a backup onto another node beside the
// running app, brings it up there and checks its health; only then does
// the app switch to the new container, after which the old node loses
// the app's forwards and the old container is destroyed. Every task of a
// move acts on the app's "other" container (fsm.ArgMoveNode and
// fsm.ArgMoveVMID): the new one before the switch, the old one after it,
// and the new one again in the undo of a failed or cancelled move, which
// removes it and leaves the app where it was, never stopped.
//
// Downtime: none before the switch (the old container serves the app
// throughout), and after it the app is reached at its new node's address
// and ports. What the old container wrote after the backup was made is
// not carried over: the new container is the backup.

// Step names of a move's undo (they begin with fsm.StepCleanup, so a
// cancel meanwhile is refused and the new node's forwards leave the app
// out).
const (
	stepMoveCleanup        = fsm.StepCleanup + "-move"
	stepMoveCleanupForward = fsm.StepCleanup + "-move-forward"
)

// argMoveLeftover marks an undo whose new container could not be removed.
const argMoveLeftover = "move_leftover"

// moveRestore restores the backup as the new container: its own MAC
// address, and its own address when addressing is static (the old
// container keeps running on the backed-up one).
var moveRestore = stage{name: "restore", timeout: longFactor, task: func(a fsm.App, _ catalog.Entry, n fsm.NetworkSettings) (string, any) {
	net, _ := net0(a, n)
	return taskspec.Restore, taskspec.RestoreSpec{Volid: a.OpArgs["volid"], Hostname: a.Hostname, Unique: true, Net0: net,
		Force: a.Attempt > 1} // a later attempt replaces what an earlier one left on the reserved VMID
}}

var moveStages = []stage{
	moveRestore, stStart, stNetwork, stUp, stForward, stHealth,
	// After the switch: the old node without the app, then the old container.
	{name: "forward-old", forwards: true, task: stForward.task},
	{name: "destroy-old", task: stDestroy.task},
}

var moveUndo = []stage{
	{name: stepMoveCleanup, task: stDestroy.task},
	{name: stepMoveCleanupForward, forwards: true, task: stForward.task},
}

// advanceMove moves a move one step (see advance).
func (c *Controller) advanceMove(ctx context.Context, a fsm.App) error {
	switched := a.OpArgs[fsm.ArgMoveSwitched] != ""
	if by := a.OpArgs[fsm.ArgCancelledBy]; by != "" && !fsm.Undoing(a.Step) && !switched {
		c.mu.Lock()
		delete(c.notBefore, a.ID)
		c.mu.Unlock()
		return c.undoMove(ctx, a, "move cancelled by "+by)
	}
	stages := moveStages
	if fsm.Undoing(a.Step) {
		stages = moveUndo
	}
	idx := 0
	for i, st := range stages {
		if st.name == a.Step {
			idx = i
		}
	}
	st := stages[idx]
	if a.Step == "" {
		return c.step(ctx, a, fsm.AppStepCmd{Step: st.name, Attempt: 1, Log: []string{st.name + ": started on " + a.OpArgs[fsm.ArgMoveNode]}})
	}
	if a.TaskID == "" {
		return c.submitMove(ctx, a, st)
	}
	var task fsm.Task
	var ok bool
	c.cfg.Backend.FSM().Read(func(s *fsm.State) { task, ok = s.Task(a.TaskID) })
	if !ok {
		return nil
	}
	if task.State == fsm.TaskPending {
		return c.checkDeadline(ctx, a, st, task)
	}
	var out taskspec.Output
	if len(task.Output) > 0 {
		_ = json.Unmarshal(task.Output, &out)
	}
	failure, kind := "", task.ErrorKind
	if task.State == fsm.TaskFailed {
		failure = task.Error
	} else if st.check != nil {
		if err := st.check(out); err != nil {
			failure, kind = err.Error(), taskspec.FailCheck
		}
	}
	if failure == "" {
		return c.moveSucceeded(ctx, a, stages, idx, out)
	}
	policy := c.policy
	if st.wait {
		policy = c.wait
	}
	if a.Attempt < policy.Attempts && !kind.Permanent() {
		d := policy.Delay(a.Attempt)
		c.mu.Lock()
		c.notBefore[a.ID] = c.cfg.Now().Add(d)
		c.mu.Unlock()
		msg := fmt.Sprintf("%s: attempt %d of %d failed (%s); retrying in %s", st.name, a.Attempt, policy.Attempts, failure, d)
		if st.wait {
			msg = fmt.Sprintf("%s: not yet (%s); checking again in %s", st.name, strings.TrimSpace(failure), d)
		}
		return c.step(ctx, a, fsm.AppStepCmd{Step: st.name, Attempt: a.Attempt + 1, Log: []string{msg}})
	}
	return c.moveFailed(ctx, a, stages, idx, fmt.Sprintf("%s failed after %d attempt(s): %s", st.name, a.Attempt, failure))
}

// other is the node and VMID a move's tasks act on.
func other(a fsm.App) (string, int) {
	vmid, _ := strconv.Atoi(a.OpArgs[fsm.ArgMoveVMID])
	return a.OpArgs[fsm.ArgMoveNode], vmid
}

// submitMove sends the stage's task to the other container.
func (c *Controller) submitMove(ctx context.Context, a fsm.App, st stage) error {
	c.mu.Lock()
	wait := c.notBefore[a.ID]
	c.mu.Unlock()
	if c.cfg.Now().Before(wait) {
		return nil
	}
	node, vmid := other(a)
	var e catalog.Entry
	var network fsm.NetworkSettings
	var defaults fsm.ResourceSettings
	var res fsm.Reservation
	c.cfg.Backend.FSM().Read(func(s *fsm.State) {
		e, _ = s.CatalogEntry(a.CatalogID)
		network, defaults = s.Network, s.ResourceDefaults()
		res, _ = s.Reservation(a.OpArgs[fsm.ArgMoveReservation])
	})
	// The tasks see the other container as the app.
	oa := a
	oa.Node, oa.VMID, oa.IP = node, vmid, res.IP
	kind, spec := st.task(oa, e, network)
	if sp, ok := spec.(taskspec.RestoreSpec); ok {
		sp.Storage = defaults.Storage
		spec = sp
	}
	if st.forwards {
		var rules []fsm.ForwardRule
		fs := taskspec.ForwardsSpec{Forwards: []nat.Forward{}}
		c.cfg.Backend.FSM().Read(func(s *fsm.State) { rules, fs.Version = s.NodeForwards(node), s.Index })
		for _, r := range rules {
			fs.Forwards = append(fs.Forwards, nat.Forward{App: r.App, Protocol: r.Protocol, PublicPort: r.PublicPort, IP: r.IP, Port: r.Port})
		}
		spec = fs
	}
	t := fsm.Task{ID: fmt.Sprintf("%s-%d-%s-%d", a.ID, a.OpIndex, st.name, a.Attempt), Node: node, Kind: kind, VMID: vmid}
	if _, err := c.cfg.Tasks.Submit(ctx, t, spec); err != nil && !problem.Is(err, problem.Conflict) {
		return err
	}
	return c.step(ctx, a, fsm.AppStepCmd{Step: st.name, TaskID: t.ID, Attempt: a.Attempt})
}

func (c *Controller) moveStep(ctx context.Context, a fsm.App, ms fsm.MoveStepCmd) error {
	s := &ms.Step
	s.ID, s.ExpectOp, s.ExpectStep, s.ExpectTask, s.At = a.ID, a.Op, a.Step, a.TaskID, c.cfg.Now()
	_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdMoveStep, RequestID: c.cfg.NewID("step_"), MoveStep: &ms})
	return err
}

// moveSucceeded goes on after stage idx succeeded: to the next stage, to
// the switch after the health check, or to the end.
func (c *Controller) moveSucceeded(ctx context.Context, a fsm.App, stages []stage, idx int, out taskspec.Output) error {
	st := stages[idx]
	node, vmid := other(a)
	var args map[string]string
	if st.name == stNetwork.name {
		if m := inetRE.FindStringSubmatch(out.Stdout); m != nil {
			args = map[string]string{fsm.ArgMoveContainerIP: m[1]}
		}
	}
	if idx+1 == len(stages) {
		if fsm.Undoing(a.Step) {
			gone := "the new container and its reservation are gone"
			if a.OpArgs[argMoveLeftover] != "" {
				gone = "the new container's reservation is freed (the container is left, see the error)"
			}
			return c.moveStep(ctx, a, fsm.MoveStepCmd{Release: true, Step: fsm.AppStepCmd{Done: true, Status: a.PrevStatus, Error: a.Error,
				Log: []string{fmt.Sprintf("%s: done; %s, and the app is %s on %s as before", st.name, gone, a.PrevStatus, a.Node)}}})
		}
		return c.moveStep(ctx, a, fsm.MoveStepCmd{Release: true, Step: fsm.AppStepCmd{Done: true, Status: fsm.AppRunning, Error: a.Error,
			Log: []string{fmt.Sprintf("%s: done; CT %d on %s is gone and its VMID and ports are free", st.name, vmid, node),
				fmt.Sprintf("move: done; the app runs on %s as CT %d", a.Node, a.VMID)}}})
	}
	next := stages[idx+1]
	if st.name == stHealth.name {
		return c.moveStep(ctx, a, fsm.MoveStepCmd{Switch: true, Step: fsm.AppStepCmd{Step: next.name, Attempt: 1,
			Log: []string{"health: done", fmt.Sprintf("switch: the app is now CT %d on %s; CT %d on %s is retired", vmid, node, a.VMID, a.Node),
				next.name + ": started on " + a.Node}}})
	}
	return c.step(ctx, a, fsm.AppStepCmd{Step: next.name, Attempt: 1, SetArgs: args,
		Log: []string{st.name + ": done", next.name + ": started on " + node}})
}

// moveFailed handles a stage that failed for good.
func (c *Controller) moveFailed(ctx context.Context, a fsm.App, stages []stage, idx int, reason string) error {
	st := stages[idx]
	node, vmid := other(a)
	switch {
	case st.name == stepMoveCleanup:
		// The forwards go all the same; the container is left for a person.
		return c.step(ctx, a, fsm.AppStepCmd{Step: stages[idx+1].name, Attempt: 1, SetArgs: map[string]string{argMoveLeftover: "1"},
			Error: fmt.Sprintf("%s; CT %d on %s could not be removed (%s): remove it by hand", a.Error, vmid, node, reason),
			Log:   []string{reason + "; remove CT " + strconv.Itoa(vmid) + " on " + node + " by hand", stages[idx+1].name + ": started"}})
	case st.name == stepMoveCleanupForward:
		return c.moveStep(ctx, a, fsm.MoveStepCmd{Release: true, Step: fsm.AppStepCmd{Done: true, Status: a.PrevStatus, Error: a.Error,
			Log: []string{reason + "; the next change of " + node + "'s forwards corrects them", "the app is " + a.PrevStatus + " on " + a.Node + " as before"}}})
	case a.OpArgs[fsm.ArgMoveSwitched] == "":
		return c.undoMove(ctx, a, "move failed: "+reason)
	case idx+1 < len(stages):
		// The old node keeps a stale forward until its forwards next change.
		return c.step(ctx, a, fsm.AppStepCmd{Step: stages[idx+1].name, Attempt: 1,
			Log: []string{reason + "; the next change of " + node + "'s forwards corrects them", stages[idx+1].name + ": started on " + node}})
	}
	msg := fmt.Sprintf("move: done, but CT %d on %s could not be removed (%s): remove it by hand", vmid, node, reason)
	return c.moveStep(ctx, a, fsm.MoveStepCmd{Release: true, Step: fsm.AppStepCmd{Done: true, Status: fsm.AppRunning, Error: msg,
		Log: []string{msg, fmt.Sprintf("the app runs on %s as CT %d", a.Node, a.VMID)}}})
}

// undoMove starts the undo of a move that failed or was cancelled before
// the switch: remove the new container, send its node its forwards
// without the app, free the new reservation.
func (c *Controller) undoMove(ctx context.Context, a fsm.App, reason string) error {
	if a.TaskID != "" {
		// A task submitted just before a cancel was not yet the app's to
		// fence: fence it now, so it never completes anything.
		var t fsm.Task
		var ok bool
		c.cfg.Backend.FSM().Read(func(s *fsm.State) { t, ok = s.Task(a.TaskID) })
		if ok && t.State == fsm.TaskPending {
			if _, err := c.propose(ctx, fsm.Command{Type: fsm.CmdExpireTask, RequestID: "cancel/" + t.ID + "/" + strconv.FormatUint(t.Fence, 10),
				ExpireTask: &fsm.ExpireTaskCmd{ID: t.ID, Fence: t.Fence, Kind: fsm.TaskCancelled, Reason: reason, At: c.cfg.Now()}}); err != nil {
				return err
			}
		}
	}
	node, vmid := other(a)
	return c.step(ctx, a, fsm.AppStepCmd{Step: stepMoveCleanup, Attempt: 1, Error: reason,
		Log: []string{reason, fmt.Sprintf("%s: removing CT %d on %s; the app stays on %s", stepMoveCleanup, vmid, node, a.Node)}})
}
