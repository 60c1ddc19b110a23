package api

import (
	"net/http"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/prune"
)

// backupPolicyJSON is an app's backup policy in force: its own, or the
// default (source), with the scheduler's next and last run.
type backupPolicyJSON struct {
	Schedule  string          `json:"schedule"`
	Storage   string          `json:"storage"`
	Mode      string          `json:"mode"`
	Retention prune.Retention `json:"retention"`
	Source    string          `json:"source"`
	NextRun   *string         `json:"next_run"`
	LastRun   *string         `json:"last_run"`
}

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func (a *API) backupPolicyView(appID string) backupPolicyJSON {
	var out backupPolicyJSON
	a.b.FSM().Read(func(s *fsm.State) {
		p, src := s.BackupPolicyFor(appID)
		if p.Mode == "" {
			p.Mode = fsm.BackupModeSnapshot
		}
		out = backupPolicyJSON{Schedule: p.Schedule, Storage: p.Storage, Mode: p.Mode, Retention: p.Retention, Source: src}
		if rec, ok := s.BackupScheduleOf(appID); ok {
			if rec.Schedule == p.Schedule && p.Schedule != "" {
				out.NextRun = timeOrNil(rec.NextRun)
			}
			out.LastRun = timeOrNil(rec.LastRun)
		}
	})
	return out
}

func (a *API) getBackupPolicy(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.backupPolicyView(app.ID), nil
}

// putBackupPolicy gives an app its own policy; the storage must be one
// the nodes report with content backup (a Proxmox Backup Server storage
// too).
func (a *API) putBackupPolicy(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var p fsm.BackupPolicy
	if err := rq.decode(&p); err != nil {
		return 0, nil, err
	}
	if err := p.Validate(); err != nil {
		return 0, nil, err
	}
	if p.Storage != "" {
		if err := a.checkStorage("storage", p.Storage, "backup"); err != nil {
			return 0, nil, err
		}
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetBackupPolicy, RequestID: rq.key,
		SetBackupPolicy: &fsm.SetBackupPolicyCmd{AppID: app.ID, Owner: owner(rq), Policy: &p}}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.backupPolicyView(app.ID), nil
}

// deleteBackupPolicy removes an app's own policy: the default applies.
func (a *API) deleteBackupPolicy(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetBackupPolicy, RequestID: rq.key,
		SetBackupPolicy: &fsm.SetBackupPolicyCmd{AppID: app.ID, Owner: owner(rq)}}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.backupPolicyView(app.ID), nil
}

func (a *API) getBackupSettings(rq *request) (int, any, error) {
	var b fsm.BackupSettings
	a.b.FSM().Read(func(s *fsm.State) { b = s.BackupSettingsNow() })
	if b.Mode == "" {
		b.Mode = fsm.BackupModeSnapshot
	}
	return http.StatusOK, b, nil
}

// putBackupSettings replaces the default backup policy and the time zone
// of schedules and retention. Left out: no schedule, the resource
// settings' backup storage, snapshot mode, keep all, UTC.
func (a *API) putBackupSettings(rq *request) (int, any, error) {
	var b fsm.BackupSettings
	if err := rq.decode(&b); err != nil {
		return 0, nil, err
	}
	if b.Mode == "" {
		b.Mode = fsm.BackupModeSnapshot
	}
	if b.Timezone == "" {
		b.Timezone = "UTC"
	}
	if err := b.Validate(); err != nil {
		return 0, nil, err
	}
	if b.Storage != "" {
		if err := a.checkStorage("storage", b.Storage, "backup"); err != nil {
			return 0, nil, err
		}
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetBackupDefaults, RequestID: rq.key, SetBackupDefaults: &b}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, b, nil
}

func (a *API) patchBackupSettings(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getBackupSettings, a.putBackupSettings, nil, nil)
}
