package apps

import (
	"context"
	"fmt"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/calendar"
	"github.com/proximity-ve/proximity/internal/problem"
)

// scheduledApp is what the scheduler reads of one app.
type scheduledApp struct {
	app    fsm.App
	policy fsm.BackupPolicy
	rec    fsm.BackupSchedule
	hasRec bool
}

// schedule runs the backup scheduler once: it sets each app's next run
// from its policy, starts the backups that are due, and deletes the
// backups retention removed. Every decision is a guarded command (the
// expected next run), so a run starts once whichever leader sees it due;
// a run missed while no leader was up starts once when one is back.
func (c *Controller) schedule(ctx context.Context) {
	now := c.cfg.ScheduleNow()
	var apps []scheduledApp
	var settings fsm.BackupSettings
	var prunes map[string][]string
	c.cfg.Backend.FSM().Read(func(s *fsm.State) {
		settings = s.BackupSettingsNow()
		for _, id := range s.AppsWithPendingPrunes() {
			if prunes == nil {
				prunes = map[string][]string{}
			}
			prunes[id] = s.PendingPrunesOf(id)
		}
		all, _ := s.ListApps("", 1, len(s.Apps)+1)
		for _, a := range all {
			p, _ := s.BackupPolicyFor(a.ID)
			rec, ok := s.BackupScheduleOf(a.ID)
			if p.Schedule == "" && !ok {
				continue
			}
			apps = append(apps, scheduledApp{app: a, policy: p, rec: rec, hasRec: ok})
		}
	})
	loc := settings.Location()
	for _, sa := range apps {
		if ctx.Err() != nil {
			return
		}
		if err := c.scheduleApp(ctx, sa, settings.Timezone, loc, now); err != nil && ctx.Err() == nil && !problem.Is(err, problem.Conflict) {
			c.log.Warn("backup schedule", "app", sa.app.ID, "err", err)
		}
	}
	for id, l := range prunes {
		c.prune(ctx, id, l)
	}
}

func (c *Controller) scheduleApp(ctx context.Context, sa scheduledApp, tz string, loc *time.Location, now time.Time) error {
	a, p, rec := sa.app, sa.policy, sa.rec
	cmd := fsm.BackupScheduleCmd{AppID: a.ID, ExpectSchedule: rec.Schedule, ExpectNext: rec.NextRun, Schedule: p.Schedule, Timezone: tz, At: now}
	if p.Schedule == "" {
		if rec.Schedule == "" {
			return nil
		}
		// The schedule was removed: forget the next run.
		return c.proposeSchedule(ctx, cmd)
	}
	ev, err := calendar.Parse(p.Schedule)
	if err != nil {
		return fmt.Errorf("schedule %q: %w", p.Schedule, err)
	}
	if !sa.hasRec || rec.Schedule != p.Schedule || rec.Timezone != tz {
		// A new or changed schedule starts counting from now.
		cmd.Next = ev.Next(now, loc)
		return c.proposeSchedule(ctx, cmd)
	}
	if rec.NextRun.IsZero() || now.Before(rec.NextRun) {
		return nil
	}
	// Due. The next run is counted from now, so runs missed while the
	// cluster was down make one run, not one each.
	cmd.Next = ev.Next(now, loc)
	busy := a.Op != ""
	if busy || (a.Status != fsm.AppRunning && a.Status != fsm.AppStopped) || a.ReservationID == "" {
		following := ev.Next(rec.NextRun, loc)
		if busy && (following.IsZero() || now.Before(following)) {
			// Wait for the operation, at most until the next run is due.
			c.mu.Lock()
			key := fmt.Sprintf("%s/%d", a.ID, rec.NextRun.Unix())
			logged := c.waitLogged[key]
			c.waitLogged[key] = true
			c.mu.Unlock()
			if !logged {
				c.log.Info("scheduled backup waits for the app's operation", "app", a.ID, "op", a.Op, "due", rec.NextRun)
			}
			return nil
		}
		reason := fmt.Sprintf("the app is %s", a.Status)
		if busy {
			reason = fmt.Sprintf("%s was still in progress when the next run came due", a.Op)
		}
		cmd.Skip = reason
		c.log.Info("scheduled backup skipped", "app", a.ID, "due", rec.NextRun, "reason", reason)
		return c.proposeSchedule(ctx, cmd)
	}
	cmd.Start, cmd.BackupID = true, c.cfg.NewID("bak_")
	c.log.Info("scheduled backup", "app", a.ID, "backup", cmd.BackupID, "due", rec.NextRun, "next", cmd.Next)
	return c.proposeSchedule(ctx, cmd)
}

func (c *Controller) proposeSchedule(ctx context.Context, cmd fsm.BackupScheduleCmd) error {
	_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdBackupSchedule, RequestID: c.cfg.NewID("sched_"), BackupSchedule: &cmd})
	return err
}

// prune deletes the next backup an app's retention removed, as a
// delete_backup operation, when the app has no operation in progress.
func (c *Controller) prune(ctx context.Context, appID string, pending []string) {
	var a fsm.App
	var ok bool
	var bid string
	c.cfg.Backend.FSM().Read(func(s *fsm.State) {
		a, ok = s.App(appID)
		for _, id := range pending {
			if b, found := s.Backup(id); found && b.AppID == appID {
				bid = id
				break
			}
		}
	})
	if !ok || bid == "" || a.Op != "" || a.ReservationID == "" {
		return
	}
	_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdPruneBackup, RequestID: c.cfg.NewID("prune_"),
		PruneBackup: &fsm.PruneBackupCmd{AppID: appID, BackupID: bid, At: c.cfg.ScheduleNow()}})
	if err != nil && !problem.Is(err, problem.Conflict) {
		c.log.Warn("prune", "app", appID, "backup", bid, "err", err)
		return
	}
	if err == nil {
		c.log.Info("prune: deleting a backup the retention removes", "app", appID, "backup", bid)
	}
}
