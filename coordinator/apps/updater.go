package apps

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/appversion"
	"github.com/proximity-ve/proximity/internal/problem"
)

// The updater runs with the controller on the leader. For every app whose
// policy is notify or auto and whose catalog entry offers a newer version
// (appversion.Newer), it records an update notice once per version (an
// app event); for an auto app that runs, is idle, and is inside its
// maintenance window (UpdateClock), it starts the update: the same
// operation as POST /apps/{id}/update (backup, new Compose document, pull,
// up, health, rollback on failure), recorded in the audit log as the
// system. The command that starts it is guarded by the app's state (idle,
// at the version it was read at), so a second leader acting on the same
// state changes nothing; a version whose update failed is not tried again
// by itself.

// defaultUpdateEvery is how often the updater looks at the apps.
const defaultUpdateEvery = 15 * time.Second

// updateSystemActor is the audit log's actor of an automatic update.
const updateSystemActor = "system"

func (c *Controller) updateClock() time.Time {
	if c.cfg.UpdateClock != nil {
		return c.cfg.UpdateClock()
	}
	return c.cfg.Now()
}

type updateWork struct {
	app    fsm.App
	to     string
	notice bool
	start  bool
}

// autoUpdates is one round of the updater.
func (c *Controller) autoUpdates(ctx context.Context) {
	every := c.cfg.UpdateEvery
	if every <= 0 {
		every = defaultUpdateEvery
	}
	c.mu.Lock()
	now := c.cfg.Now()
	due := now.Sub(c.lastUpdates) >= every
	if due {
		c.lastUpdates = now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	now = c.updateClock()
	var work []updateWork
	c.cfg.Backend.FSM().Read(func(s *fsm.State) {
		for _, a := range s.Apps {
			policy := a.Updates.Policy()
			if policy == fsm.AutoUpdateOff || a.Adopted {
				continue
			}
			e, ok := s.CatalogEntry(a.CatalogID)
			if !ok || !appversion.Newer(e.Version, a.CatalogVersion) {
				continue
			}
			w := updateWork{app: *a, to: e.Version, notice: a.Updates.Notified != e.Version}
			if policy == fsm.AutoUpdateAuto && a.Op == "" && a.Status == fsm.AppRunning && a.Updates.Failed != e.Version {
				open, err := fsm.WindowOpen(a.Updates.Window, a.Updates.Minutes(), now)
				if err != nil {
					c.log.Warn("auto update: maintenance window", "app", a.ID, "window", a.Updates.Window, "err", err)
				}
				w.start = open
			}
			if w.notice || w.start {
				work = append(work, w)
			}
		}
	})
	for _, w := range work {
		if ctx.Err() != nil {
			return
		}
		a := w.app
		if w.notice {
			_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdUpdateNotice, RequestID: c.cfg.NewID("updnotice_"),
				UpdateNotice: &fsm.UpdateNoticeCmd{ID: a.ID, From: a.CatalogVersion, Version: w.to, At: c.cfg.Now()}})
			if err != nil && !problem.Is(err, problem.Conflict) {
				c.log.Warn("update notice", "app", a.ID, "err", err)
			}
		}
		if !w.start {
			continue
		}
		rid := c.cfg.NewID("autoupd_")
		at := c.cfg.Now()
		_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdAutoUpdate, RequestID: rid, AutoUpdate: &fsm.AutoUpdateCmd{
			Action: fsm.AppActionCmd{ID: a.ID, Op: fsm.OpUpdate, At: at, BackupID: c.cfg.NewID("bak_"), Version: w.to, ExpectVersion: a.CatalogVersion},
			Audit: fsm.AuditRecord{Time: at.UTC(), Actor: fsm.AuditActor{Name: updateSystemActor}, Source: "auto-update",
				Method: http.MethodPost, Route: "POST /api/v1/apps/{id}/update", Targets: []string{a.ID}, Status: http.StatusAccepted,
				RequestID: rid, Action: "app.update.auto"},
		}})
		switch {
		case err == nil:
			c.log.Info("automatic update started", "app", a.ID, "from", a.CatalogVersion, "to", w.to,
				"window", fmt.Sprintf("%s/%dmin", a.Updates.Window, a.Updates.Minutes()))
		case problem.Is(err, problem.Conflict):
			c.log.Debug("automatic update not started", "app", a.ID, "err", err)
		default:
			c.log.Warn("automatic update", "app", a.ID, "err", err)
		}
	}
}
