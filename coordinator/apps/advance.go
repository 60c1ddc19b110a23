package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

var inetRE = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`)

// advance moves one app's operation one step: it submits the current
// stage's task, or, when that task has ended, goes to the next stage,
// retries, or ends the operation.
func (c *Controller) advance(ctx context.Context, a fsm.App) error {
	if a.Op == fsm.OpMove {
		return c.advanceMove(ctx, a) // move.go
	}
	opStages, opFinal, ok := opFor(a)
	if !ok {
		return fmt.Errorf("unknown operation %q", a.Op)
	}
	if by := a.OpArgs[fsm.ArgCancelledBy]; by != "" && !fsm.Undoing(a.Step) {
		return c.cancelled(ctx, a, by)
	}
	if len(opStages) == 0 {
		return c.finish(ctx, a, opFinal)
	}
	var e catalog.Entry
	var haveEntry bool
	var network fsm.NetworkSettings
	var defaults fsm.ResourceSettings
	var task fsm.Task
	var haveTask bool
	c.cfg.Backend.FSM().Read(func(s *fsm.State) {
		e, haveEntry = s.CatalogEntry(a.CatalogID)
		network, defaults = s.Network, s.ResourceDefaults()
		if a.TaskID != "" {
			task, haveTask = s.Task(a.TaskID)
		}
	})
	stages := opStages
	switch {
	case strings.HasPrefix(a.Step, cleanupStage):
		stages = cleanupStages
	case a.Step == stSettle.name:
		stages = []stage{stSettle}
	case strings.HasPrefix(a.Step, rollbackPrefix):
		stages = rollbackStages(a)
	}
	idx := 0
	for i, st := range stages {
		if st.name == a.Step {
			idx = i
		}
	}
	st := stages[idx]
	if a.Step == "" {
		return c.step(ctx, a, fsm.AppStepCmd{Step: st.name, Attempt: 1, Log: []string{st.name + ": started"}})
	}
	if a.TaskID == "" {
		c.mu.Lock()
		wait := c.notBefore[a.ID]
		c.mu.Unlock()
		if c.cfg.Now().Before(wait) {
			return nil
		}
		if a.Op == fsm.OpDelete && a.ReservationID == "" {
			// A failed deploy left nothing on the node.
			return c.finish(ctx, a, opFinal)
		}
		if moved, err := c.updateMoved(ctx, a, e, st); moved || err != nil {
			return err
		}
		if moved := deployMoved(a, e, haveEntry, st); moved != "" {
			return c.failed(ctx, a, stages, idx, moved, taskspec.FailInvalid)
		}
		if st.needsEntry && !haveEntry {
			// Without its entry the stage would send Proxmox an empty
			// template or Compose file: no retry brings the entry back.
			return c.failed(ctx, a, stages, idx, fmt.Sprintf("catalog entry %q is not in the catalog (was its source removed?)", a.CatalogID), taskspec.FailInvalid)
		}
		kind, spec := st.task(a, e, network)
		if st.forwards {
			// The node's whole set, read only when it is sent.
			var rules []fsm.ForwardRule
			fs := taskspec.ForwardsSpec{Forwards: []nat.Forward{}}
			c.cfg.Backend.FSM().Read(func(s *fsm.State) { rules, fs.Version = s.NodeForwards(a.Node), s.Index })
			for _, r := range rules {
				fs.Forwards = append(fs.Forwards, nat.Forward{App: r.App, Protocol: r.Protocol, PublicPort: r.PublicPort, IP: r.IP, Port: r.Port})
			}
			spec = fs
		}
		switch sp := spec.(type) {
		case taskspec.CreateSpec:
			sp.SwapMB, sp.Storage = defaults.SwapMB, defaults.Storage
			sp.OpTag = opTag(a)
			spec = sp
		case taskspec.BackupSpec:
			sp.Storage = defaults.BackupStorage
			// The app's backup policy (fsm/backups.go) may name another.
			if v := a.OpArgs["storage"]; v != "" {
				sp.Storage = v
			}
			if v := a.OpArgs["mode"]; v != "" {
				sp.Mode = v
			}
			spec = sp
		case taskspec.RestoreSpec:
			sp.Storage = defaults.Storage
			spec = sp
		}
		// The ID names this operation (by the index it started at), the
		// stage and the attempt: a resubmission after an unknown outcome is
		// the same task, and a later operation never meets an old one.
		t := fsm.Task{ID: fmt.Sprintf("%s-%d-%s-%d", a.ID, a.OpIndex, st.name, a.Attempt), Node: a.Node, Kind: kind, VMID: a.VMID}
		if st.onSource {
			v, err := strconv.Atoi(a.OpArgs["source_vmid"])
			if err != nil || v <= 0 {
				return c.failed(ctx, a, stages, idx, fmt.Sprintf("the source container's VMID %q is not a VMID", a.OpArgs["source_vmid"]), taskspec.FailInvalid)
			}
			t.VMID = v
		}
		if n := a.OpArgs[fsm.ArgBackupNode]; st.name == stDeleteBackup.name && n != "" {
			t.Node = n // the archive's node: a moved app's older backups stay where they were made
		}
		if kind == taskspec.Create {
			t.ReservationID = a.ReservationID
		}
		if _, err := c.cfg.Tasks.Submit(ctx, t, spec); err != nil && !problem.Is(err, problem.Conflict) {
			return err
		}
		return c.step(ctx, a, fsm.AppStepCmd{Step: st.name, TaskID: t.ID, Attempt: a.Attempt})
	}
	if haveTask && task.State == fsm.TaskPending {
		return c.checkDeadline(ctx, a, st, task)
	}
	if !haveTask {
		return nil
	}
	var out taskspec.Output
	var decodeErr error
	if len(task.Output) > 0 {
		decodeErr = json.Unmarshal(task.Output, &out)
	}
	failure := ""
	kind := task.ErrorKind
	switch {
	case task.State == fsm.TaskFailed:
		// A failure is told by the task's state, never by its text: one
		// without a reason is still a failure.
		failure = task.Error
		if failure == "" {
			failure = "the task failed on the node without a reason"
		}
	case decodeErr != nil:
		// A task that succeeded with an output no one can read has not
		// told us what it made (a backup's archive): another attempt.
		failure, kind = "the node's answer could not be read: "+decodeErr.Error(), taskspec.FailOutput
	case st.check != nil:
		if err := st.check(out); err != nil {
			failure, kind = err.Error(), taskspec.FailCheck
		}
	}
	if failure == "" {
		vmid := 0
		if task.Kind == taskspec.Create {
			vmid = task.VMID
		}
		containerIP := ""
		if st.name == stNetwork.name {
			if m := inetRE.FindStringSubmatch(out.Stdout); m != nil {
				containerIP = m[1]
			}
		}
		if strings.HasPrefix(a.Step, cleanupStage) && idx+1 == len(stages) {
			return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: fsm.AppError, Release: true,
				Log: []string{"cleanup: the container is removed and every reservation is free"}})
		}
		if a.Step == stSettle.name {
			return c.settled(ctx, a, out)
		}
		var backup *fsm.Backup
		var args map[string]string
		switch st.name {
		case stBackup.name:
			backup = &fsm.Backup{ID: a.OpArgs["backup"], Status: fsm.BackupReady, Volid: out.Volid}
			args = map[string]string{"volid": out.Volid}
		case stDeleteBackup.name:
			backup = &fsm.Backup{ID: a.OpArgs["restore_backup"]} // no status: the record goes
		}
		if strings.HasPrefix(a.Step, rollbackPrefix) && idx+1 == len(stages) {
			status, msg := rolledBack(a)
			return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: status, Backup: backup, Error: a.Error, Log: []string{msg}})
		}
		if idx+1 < len(stages) {
			next := stages[idx+1]
			return c.step(ctx, a, fsm.AppStepCmd{Step: next.name, Attempt: 1, VMID: vmid, Backup: backup, SetArgs: args, ContainerIP: containerIP,
				Log: []string{st.name + ": done", next.name + ": started"}})
		}
		final := opFinal
		switch final {
		case prevStatus:
			final = a.PrevStatus
		case statusFromInspect:
			final = fsm.AppStopped
			if out.Status == "running" {
				final = fsm.AppRunning
			}
		}
		return c.finishWith(ctx, a, final, backup)
	}
	return c.failed(ctx, a, stages, idx, failure, kind)
}

// failed handles a failed attempt of stage stages[idx]: another attempt
// after the policy's delay, unless the failure is permanent or the attempts
// are used up; then the operation's undo (cleanup, rollback) or its end in
// error with the reason.
func (c *Controller) failed(ctx context.Context, a fsm.App, stages []stage, idx int, failure string, kind taskspec.Failure) error {
	st := stages[idx]
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
	reason := fmt.Sprintf("%s failed after %d attempt(s): %s", st.name, a.Attempt, failure)
	snapshotCleanup := func() *fsm.Cleanup {
		vmid, err := strconv.Atoi(a.OpArgs["source_vmid"])
		if err != nil || vmid <= 0 || a.OpArgs["snapshot"] == "" {
			return nil // no snapshot was taken of a container we can name
		}
		return &fsm.Cleanup{ID: fmt.Sprintf("%s-%d", a.ID, a.OpIndex), Node: a.Node, VMID: vmid, Snapshot: a.OpArgs["snapshot"], Reason: reason}
	}
	if st.cleanup && idx+1 < len(stages) {
		// The operation goes on; the removal is retried until it succeeds.
		next := stages[idx+1]
		return c.step(ctx, a, fsm.AppStepCmd{Step: next.name, Attempt: 1, Cleanup: snapshotCleanup(),
			Log: []string{reason + "; recorded as a pending cleanup", next.name + ": started"}})
	}
	var failedBackup *fsm.Backup
	if st.name == stBackup.name {
		failedBackup = &fsm.Backup{ID: a.OpArgs["backup"], Status: fsm.BackupFailed, Error: reason}
	}
	if a.Op == fsm.OpReconfigure && !strings.HasPrefix(a.Step, rollbackPrefix) {
		// Put the previous .env back (if this operation wrote one).
		first := rollbackStages(a)[0].name
		return c.step(ctx, a, fsm.AppStepCmd{Step: first, Attempt: 1, Error: "reconfigure failed: " + reason,
			Log: []string{"reconfigure failed: " + reason, "rollback: restoring the previous settings"}})
	}
	if a.Op == fsm.OpUpdate && a.OpArgs["volid"] != "" && !strings.HasPrefix(a.Step, rollbackPrefix) {
		// The update failed after its backup: put the app back.
		return c.step(ctx, a, fsm.AppStepCmd{Step: rollback[0].name, Attempt: 1, Error: "update failed: " + reason,
			Log: []string{"update failed: " + reason, "rollback: restoring the pre-update backup"}})
	}
	if (a.Op == fsm.OpDeploy || a.Op == fsm.OpClone) && !strings.HasPrefix(a.Step, cleanupStage) {
		// A deploy or clone that failed for good leaves nothing behind:
		// remove the container, then free the reservation (and a clone's
		// temporary snapshot, as a pending cleanup).
		var cl *fsm.Cleanup
		if a.Op == fsm.OpClone {
			cl = snapshotCleanup()
		}
		return c.step(ctx, a, fsm.AppStepCmd{Step: cleanupStage, Attempt: 1, Error: reason, Cleanup: cl,
			Log: []string{reason, "cleanup: removing the container"}})
	}
	status := fsm.AppError
	if a.Op == fsm.OpBackup || a.Op == fsm.OpDeleteBackup || (a.Op == fsm.OpUpdate && a.OpArgs["volid"] == "") {
		status = a.PrevStatus // the app itself is as it was
	}
	return c.step(ctx, a, fsm.AppStepCmd{Done: true, Status: status, Error: reason, Backup: failedBackup, Log: []string{reason}})
}

// finish ends an operation: the app takes its final status, or, after a
// delete, it is removed with its reservation.
func (c *Controller) finish(ctx context.Context, a fsm.App, final string) error {
	return c.finishWith(ctx, a, final, nil)
}

func (c *Controller) finishWith(ctx context.Context, a fsm.App, final string, b *fsm.Backup) error {
	if a.Op == fsm.OpDelete {
		_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdRemoveApp, RequestID: "remove/" + a.ID, RemoveApp: &fsm.RemoveAppCmd{ID: a.ID}})
		return err
	}
	s := fsm.AppStepCmd{Done: true, Status: final, Backup: b, Log: []string{a.Op + ": done; " + final}}
	if v := a.OpArgs["version"]; a.Op == fsm.OpUpdate && v != "" {
		s.UpdatedTo = v
		s.Log = []string{"update: done; the app runs version " + v}
	}
	return c.step(ctx, a, s)
}

// cleanups retries every pending cleanup: one delete_snapshot task at a
// time each, with the retry policy's backoff between attempts, forever.
func (c *Controller) cleanups(ctx context.Context, pending []fsm.Cleanup) {
	for _, cl := range pending {
		c.mu.Lock()
		try := c.cleanupTry[cl.ID]
		wait := c.notBefore["cleanup/"+cl.ID]
		c.mu.Unlock()
		if c.cfg.Now().Before(wait) {
			continue
		}
		if try == 0 {
			try = 1
		}
		id := fmt.Sprintf("cleanup-%s-%d", cl.ID, try)
		var t fsm.Task
		var ok bool
		c.cfg.Backend.FSM().Read(func(s *fsm.State) { t, ok = s.Task(id) })
		switch {
		case !ok:
			_, err := c.cfg.Tasks.Submit(ctx, fsm.Task{ID: id, Node: cl.Node, Kind: taskspec.DeleteSnapshot, VMID: cl.VMID}, taskspec.SnapshotSpec{Name: cl.Snapshot})
			if err != nil && !problem.Is(err, problem.Conflict) {
				c.log.Warn("cleanup", "id", cl.ID, "err", err)
			}
		case t.State == fsm.TaskSucceeded:
			if _, err := c.propose(ctx, fsm.Command{Type: fsm.CmdCleanupDone, RequestID: "cleanup-done/" + cl.ID, CleanupDone: &fsm.CleanupDoneCmd{ID: cl.ID}}); err == nil {
				c.log.Info("pending cleanup done", "id", cl.ID, "vmid", cl.VMID, "snapshot", cl.Snapshot)
			}
		case t.State == fsm.TaskFailed:
			c.mu.Lock()
			c.cleanupTry[cl.ID] = try + 1
			c.notBefore["cleanup/"+cl.ID] = c.cfg.Now().Add(c.policy.Delay(min(try, 10)))
			c.mu.Unlock()
		}
	}
}
