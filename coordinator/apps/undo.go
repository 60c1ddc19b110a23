package apps

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// Stage deadlines. Each attempt of a stage's task has a deadline: the
// policy's Timeout times the stage's factor (long stages download, install
// or copy a whole disk). A task still pending past it is fenced and
// counts as a failed attempt ("timeout after …"), so a stage ends within
// Attempts × deadline + the backoff between attempts, and no app stays
// transitional for ever. With the defaults:
//
//	stage                                       per attempt  attempts  whole stage
//	create                                      10 min       5         about 50.5 min
//	docker, up, pull, backup, restore, clone    30 min       5         about 2.5 h
//	network, health (waiting stages)            1 min        60        at most 65 min
//	every other stage (and the undo's)          5 min        5         about 25.5 min
const (
	defaultTimeout = 5 * time.Minute
	waitTimeout    = time.Minute
)

// deadline is the deadline of one attempt of st under policy p.
func deadline(p Policy, st stage, wait bool) time.Duration {
	d := p.Timeout
	if d <= 0 {
		d = defaultTimeout
		if wait {
			d = waitTimeout
		}
	}
	return d * time.Duration(max(st.timeout, 1))
}

// checkDeadline fences the stage's pending task once its attempt has run
// past its deadline; the next round counts it as a failed attempt.
func (c *Controller) checkDeadline(ctx context.Context, a fsm.App, st stage, task fsm.Task) error {
	p := c.policy
	if st.wait {
		p = c.wait
	}
	d := deadline(p, st, st.wait)
	if c.cfg.Now().Sub(task.CreatedAt) < d {
		return nil
	}
	_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdExpireTask, RequestID: "expire/" + task.ID + "/" + strconv.FormatUint(task.Fence, 10),
		ExpireTask: &fsm.ExpireTaskCmd{ID: task.ID, Fence: task.Fence, Kind: fsm.TaskTimeout, Reason: "timeout after " + d.String(), At: c.cfg.Now()}})
	return err
}

// stSettle reads the container's real status after a cancelled start,
// stop, restart or restore: the app ends with it.
var stSettle = stage{name: fsm.StepInspect, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
	return taskspec.Inspect, nil
}}

// cleanupStages are the undo of a deploy or clone: remove the container,
// then send the node its forwards without the app's (NodeForwards leaves
// out an app being cleaned up); the reservation is freed at the end.
var cleanupStages = []stage{
	{name: cleanupStage, task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.Destroy, taskspec.StopSpec{Force: true, OpTag: opTag(a)}
	}},
	{name: cleanupStage + "-forward", forwards: true, task: stForward.task},
}

// opTag is the tag of the operation a create or its cleanup belongs to,
// the same for every attempt.
func opTag(a fsm.App) string { return taskspec.Tag(fmt.Sprintf("op-%s-%d", a.ID, a.OpIndex)) }

// cancelled starts the undo of an operation someone cancelled (the FSM
// fenced its task already): a deploy or clone removes what it made and
// frees its reservation, an update after its backup and a reconfigure
// roll back, a backup
// ends failed, and start, stop, restart and restore end with the status
// the container has.
func (c *Controller) cancelled(ctx context.Context, a fsm.App, by string) error {
	c.mu.Lock()
	delete(c.notBefore, a.ID)
	c.mu.Unlock()
	reason := a.Op + " cancelled by " + by
	if a.TaskID != "" {
		// A task submitted just before the cancel was not yet the app's
		// to fence: fence it now, so it never completes anything.
		var t fsm.Task
		var ok bool
		c.cfg.Backend.FSM().Read(func(s *fsm.State) { t, ok = s.Task(a.TaskID) })
		if ok && t.State == fsm.TaskPending {
			if _, err := c.propose(ctx, fsm.Command{Type: fsm.CmdExpireTask, RequestID: "cancel/" + t.ID + "/" + strconv.FormatUint(t.Fence, 10),
				ExpireTask: &fsm.ExpireTaskCmd{ID: t.ID, Fence: t.Fence, Kind: fsm.TaskCancelled, Reason: "cancelled by " + by, At: c.cfg.Now()}}); err != nil {
				return err
			}
		}
	}
	switch {
	case a.Op == fsm.OpDeploy || a.Op == fsm.OpClone:
		var cl *fsm.Cleanup
		if a.Op == fsm.OpClone {
			vmid, _ := strconv.Atoi(a.OpArgs["source_vmid"])
			cl = &fsm.Cleanup{ID: fmt.Sprintf("%s-%d", a.ID, a.OpIndex), Node: a.Node, VMID: vmid, Snapshot: a.OpArgs["snapshot"], Reason: reason}
		}
		return c.step(ctx, a, fsm.AppStepCmd{Step: cleanupStage, Attempt: 1, Error: reason, Cleanup: cl,
			Log: []string{"cleanup: removing the container"}})
	case a.Op == fsm.OpUpdate && a.OpArgs["volid"] != "":
		return c.step(ctx, a, fsm.AppStepCmd{Step: rollbackStages(a)[0].name, Attempt: 1, Error: reason,
			Log: []string{"rollback: restoring the pre-update backup"}})
	case a.Op == fsm.OpReconfigure:
		return c.step(ctx, a, fsm.AppStepCmd{Step: rollbackStages(a)[0].name, Attempt: 1, Error: reason,
			Log: []string{"rollback: restoring the previous settings"}})
	case a.Op == fsm.OpBackup || a.Op == fsm.OpUpdate || a.Op == fsm.OpDeleteBackup:
		var b *fsm.Backup
		if id := a.OpArgs["backup"]; id != "" {
			b = &fsm.Backup{ID: id, Status: fsm.BackupFailed, Error: reason}
		}
		return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: a.PrevStatus, Backup: b,
			Log: []string{a.Op + ": ended; the app is " + a.PrevStatus}})
	case a.Op == fsm.OpAdopt:
		return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: fsm.AppError, Error: reason, Log: []string{reason}})
	}
	return c.step(ctx, a, fsm.AppStepCmd{Step: stSettle.name, Attempt: 1,
		Log: []string{stSettle.name + ": reading the container's status"}})
}

// settled ends a cancelled operation with the container's own status.
func (c *Controller) settled(ctx context.Context, a fsm.App, out taskspec.Output) error {
	status := fsm.AppStopped
	if out.Status == "running" {
		status = fsm.AppRunning
	}
	return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: status,
		Log: []string{fmt.Sprintf("%s: the container is %s; the app is %s", stSettle.name, orUnknown(out.Status), status)}})
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}
