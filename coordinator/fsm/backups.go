package fsm

import (
	"fmt"
	"slices"
	"time"
	_ "time/tzdata" // schedules and prune periods read the same zones on every server

	"github.com/proximity-ve/proximity/internal/calendar"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/prune"
)

// Backup modes (vzdump's --mode).
const (
	BackupModeSnapshot = "snapshot"
	BackupModeSuspend  = "suspend"
	BackupModeStop     = "stop"
)

// Backup reasons, as Backup.Reason records them.
const (
	BackupReasonManual    = "manual"
	BackupReasonPreUpdate = "pre-update"
	BackupReasonScheduled = "scheduled"
)

// maxKeep bounds each retention count.
const maxKeep = 100_000

// BackupPolicy is when an app is backed up, where, how, and which of its
// backups are kept. Schedule is a Proxmox calendar event; empty means no
// scheduled runs (the retention still applies after every backup). Storage
// empty is the resource settings' backup storage; Mode empty is snapshot.
// A zero Retention keeps every backup.
type BackupPolicy struct {
	Schedule  string          `json:"schedule"`
	Storage   string          `json:"storage"`
	Mode      string          `json:"mode"`
	Retention prune.Retention `json:"retention"`
}

// Validate checks the policy; errors name the field.
func (p BackupPolicy) Validate() error {
	if p.Schedule != "" {
		if _, err := calendar.Parse(p.Schedule); err != nil {
			return problem.E(problem.Invalid, "schedule: %v", err)
		}
	}
	if p.Storage != "" && !storageRE.MatchString(p.Storage) {
		return problem.E(problem.Invalid, "storage: %q is not a storage name", p.Storage)
	}
	switch p.Mode {
	case "", BackupModeSnapshot, BackupModeSuspend, BackupModeStop:
	default:
		return problem.E(problem.Invalid, "mode: %q must be snapshot, suspend or stop", p.Mode)
	}
	r := p.Retention
	for _, f := range []struct {
		name string
		v    int
	}{{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily},
		{"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly}} {
		if f.v < 0 || f.v > maxKeep {
			return problem.E(problem.Invalid, "retention.%s: %d outside 0-%d", f.name, f.v, maxKeep)
		}
	}
	return nil
}

// BackupSettings is the default backup policy of apps without their own,
// and the time zone every schedule and every prune period is read in.
type BackupSettings struct {
	BackupPolicy
	Timezone string `json:"timezone"`
}

// DefaultBackupSettings: no schedule, snapshot mode, keep everything, UTC.
func DefaultBackupSettings() BackupSettings {
	return BackupSettings{BackupPolicy: BackupPolicy{Mode: BackupModeSnapshot}, Timezone: "UTC"}
}

// Validate checks the settings; errors name the field.
func (b BackupSettings) Validate() error {
	if err := b.BackupPolicy.Validate(); err != nil {
		return err
	}
	if b.Timezone == "" {
		return problem.E(problem.Invalid, "timezone: required (an IANA zone such as UTC or Europe/Berlin)")
	}
	if _, err := time.LoadLocation(b.Timezone); err != nil || b.Timezone == "Local" {
		return problem.E(problem.Invalid, "timezone: %q is not an IANA time zone", b.Timezone)
	}
	return nil
}

// Location is the settings' time zone (UTC if it cannot be loaded).
func (b BackupSettings) Location() *time.Location {
	loc, err := time.LoadLocation(b.Timezone)
	if err != nil || b.Timezone == "Local" {
		return time.UTC
	}
	return loc
}

// BackupSchedule is an app's scheduler state: the next run of Schedule
// (as read in Timezone), and the last run. It is replicated so that a new
// leader neither skips nor repeats a run.
type BackupSchedule struct {
	Schedule string    `json:"schedule"`
	Timezone string    `json:"timezone"`
	NextRun  time.Time `json:"next_run,omitzero"`
	LastRun  time.Time `json:"last_run,omitzero"`
	// LastBackup is the backup the last run started.
	LastBackup string `json:"last_backup,omitempty"`
}

// SetBackupPolicyCmd sets (Policy non-nil) or removes an app's own policy.
// Owner, when set, must own the app.
type SetBackupPolicyCmd struct {
	AppID  string        `json:"app_id"`
	Owner  string        `json:"owner,omitempty"`
	Policy *BackupPolicy `json:"policy,omitempty"`
}

// BackupScheduleCmd advances an app's next scheduled run from ExpectNext
// (with ExpectSchedule; zero and empty when the app has no record) to
// Next, and with Start also starts the scheduled backup BackupID, or with
// Skip records that the run was skipped and why. The guard makes the
// command apply at most once per run, whichever leader proposes it.
type BackupScheduleCmd struct {
	AppID          string    `json:"app_id"`
	ExpectSchedule string    `json:"expect_schedule"`
	ExpectNext     time.Time `json:"expect_next,omitzero"`
	Schedule       string    `json:"schedule"`
	Timezone       string    `json:"timezone"`
	Next           time.Time `json:"next,omitzero"`
	Start          bool      `json:"start,omitempty"`
	BackupID       string    `json:"backup_id,omitempty"`
	Skip           string    `json:"skip,omitempty"`
	At             time.Time `json:"at"`
}

// BackupSettingsNow returns the backup settings in force.
func (s *State) BackupSettingsNow() BackupSettings {
	if s.BackupDefaults == nil {
		return DefaultBackupSettings()
	}
	return *s.BackupDefaults
}

// BackupPolicyFor returns an app's policy in force and where it comes
// from: "app" (its own) or "default".
func (s *State) BackupPolicyFor(appID string) (BackupPolicy, string) {
	if p, ok := s.BackupPolicies[appID]; ok && p != nil {
		return *p, "app"
	}
	return s.BackupSettingsNow().BackupPolicy, "default"
}

// BackupScheduleOf returns an app's scheduler state.
func (s *State) BackupScheduleOf(appID string) (BackupSchedule, bool) {
	r, ok := s.BackupSchedules[appID]
	if !ok || r == nil {
		return BackupSchedule{}, false
	}
	return *r, true
}

// PendingPrunesOf lists the backups of an app that its retention removes
// and that are still to be deleted, oldest decision first.
func (s *State) PendingPrunesOf(appID string) []string {
	return slices.Clone(s.PendingPrunes[appID])
}

// AppsWithPendingPrunes lists the apps that have backups to prune.
func (s *State) AppsWithPendingPrunes() []string {
	var out []string
	for id, l := range s.PendingPrunes {
		if len(l) > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (s *State) setBackupDefaults(b BackupSettings) error {
	if err := b.Validate(); err != nil {
		return err
	}
	cp := b
	s.BackupDefaults = &cp
	return nil
}

func (s *State) setBackupPolicy(c SetBackupPolicyCmd) error {
	a, ok := s.Apps[c.AppID]
	if !ok || (c.Owner != "" && a.Owner != c.Owner) {
		return problem.E(problem.NotFound, "app %s does not exist", c.AppID)
	}
	if c.Policy == nil {
		delete(s.BackupPolicies, c.AppID)
		return nil
	}
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	if s.BackupPolicies == nil {
		s.BackupPolicies = map[string]*BackupPolicy{}
	}
	cp := *c.Policy
	s.BackupPolicies[c.AppID] = &cp
	return nil
}

func (s *State) backupSchedule(index uint64, c BackupScheduleCmd) (*App, error) {
	a, ok := s.Apps[c.AppID]
	if !ok {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.AppID)
	}
	cur, _ := s.BackupScheduleOf(c.AppID)
	if cur.Schedule != c.ExpectSchedule || !cur.NextRun.Equal(c.ExpectNext) {
		return nil, problem.E(problem.Conflict, "the backup schedule of app %s moved on (next run %s)", c.AppID, cur.NextRun.UTC().Format(time.RFC3339))
	}
	if c.Start && c.Skip != "" {
		return nil, problem.E(problem.Invalid, "backup schedule: start and skip are exclusive")
	}
	if (c.Start || c.Skip != "") && (c.ExpectNext.IsZero() || c.At.Before(c.ExpectNext)) {
		return nil, problem.E(problem.Conflict, "the scheduled backup of app %s is not due", c.AppID)
	}
	next := BackupSchedule{Schedule: c.Schedule, Timezone: c.Timezone, NextRun: c.Next.UTC(), LastRun: cur.LastRun, LastBackup: cur.LastBackup}
	if c.Start {
		if _, err := s.appAction(index, AppActionCmd{ID: c.AppID, Op: OpBackup, BackupID: c.BackupID, At: c.At}); err != nil {
			return nil, err
		}
		s.Backups[c.BackupID].Reason = BackupReasonScheduled
		next.LastRun, next.LastBackup = c.At.UTC(), c.BackupID
		a.log(c.At, fmt.Sprintf("scheduled backup %s (schedule %q, due %s)", c.BackupID, c.Schedule, c.ExpectNext.UTC().Format(time.RFC3339)))
	}
	if c.Skip != "" {
		a.log(c.At, fmt.Sprintf("scheduled backup due %s skipped: %s", c.ExpectNext.UTC().Format(time.RFC3339), c.Skip))
		a.UpdatedAt = c.At.UTC()
	}
	if c.Start || c.Skip != "" {
		target := []string{c.AppID}
		status := 202
		if c.BackupID != "" {
			target = append(target, c.BackupID)
		}
		action := "app.backup.scheduled"
		if c.Skip != "" {
			action, status = "app.backup.skipped", 409
		}
		_ = s.appendAudit(AuditCmd{Now: c.At, Records: []AuditRecord{{Time: c.At.UTC(), Actor: AuditActor{Name: "system"},
			Source: "scheduler", Method: "POST", Route: "POST /api/v1/apps/{id}/backups", Targets: target, Status: status,
			RequestID: fmt.Sprintf("sched-%s-%d", c.AppID, c.ExpectNext.Unix()), Action: action}}})
	}
	if s.BackupSchedules == nil {
		s.BackupSchedules = map[string]*BackupSchedule{}
	}
	s.BackupSchedules[c.AppID] = &next
	cp := *a
	return &cp, nil
}

// PruneBackupCmd starts the deletion of a backup the app's retention
// removed (one of its pending prunes) as a delete_backup operation of the
// system. It applies only to a pending prune, so the system never deletes
// a backup the retention keeps.
type PruneBackupCmd struct {
	AppID    string    `json:"app_id"`
	BackupID string    `json:"backup_id"`
	At       time.Time `json:"at"`
}

func (s *State) pruneBackup(index uint64, c PruneBackupCmd) (*App, error) {
	if !slices.Contains(s.PendingPrunes[c.AppID], c.BackupID) {
		return nil, problem.E(problem.Conflict, "backup %s of app %s is not to be pruned", c.BackupID, c.AppID)
	}
	out, err := s.appAction(index, AppActionCmd{ID: c.AppID, Op: OpDeleteBackup, BackupID: c.BackupID, At: c.At})
	if err != nil {
		return nil, err
	}
	a := s.Apps[c.AppID]
	a.log(c.At, "prune: the retention removes backup "+c.BackupID)
	_ = s.appendAudit(AuditCmd{Now: c.At, Records: []AuditRecord{{Time: c.At.UTC(), Actor: AuditActor{Name: "system"},
		Source: "retention", Method: "DELETE", Route: "DELETE /api/v1/apps/{id}/backups/{bid}", Targets: []string{c.AppID, c.BackupID},
		Status: 202, RequestID: fmt.Sprintf("prune-%s-%d", c.BackupID, index), Action: "app.backup.pruned"}}})
	out.Log = a.Log
	return out, nil
}

// backupArgs are the storage and mode an app's backups use.
func (s *State) backupArgs(appID string, args map[string]string) {
	p, _ := s.BackupPolicyFor(appID)
	if p.Storage != "" {
		args["storage"] = p.Storage
	}
	if p.Mode != "" {
		args["mode"] = p.Mode
	}
}

// planPrune records, after a backup of the app became ready, the backups
// its retention removes; the controller deletes them one delete_backup
// operation at a time.
func (s *State) planPrune(appID string) {
	p, _ := s.BackupPolicyFor(appID)
	var list []prune.Backup
	for _, b := range s.AppBackups(appID) {
		if b.Status == BackupReady {
			list = append(list, prune.Backup{ID: b.ID, Time: b.CreatedAt})
		}
	}
	removed := prune.Removed(list, p.Retention, s.BackupSettingsNow().Location())
	pending := s.PendingPrunes[appID]
	for i := len(removed) - 1; i >= 0; i-- { // oldest first
		if !slices.Contains(pending, removed[i]) {
			pending = append(pending, removed[i])
		}
	}
	s.setPending(appID, pending)
}

// dropPrune forgets a pending prune (its backup is gone, or its delete ended).
func (s *State) dropPrune(appID, backupID string) {
	if l, ok := s.PendingPrunes[appID]; ok {
		s.setPending(appID, slices.DeleteFunc(slices.Clone(l), func(id string) bool { return id == backupID }))
	}
}

func (s *State) setPending(appID string, l []string) {
	if len(l) == 0 {
		delete(s.PendingPrunes, appID)
		return
	}
	if s.PendingPrunes == nil {
		s.PendingPrunes = map[string][]string{}
	}
	s.PendingPrunes[appID] = l
}

// forgetBackupState drops a removed app's policy, schedule and prunes.
func (s *State) forgetBackupState(appID string) {
	delete(s.BackupPolicies, appID)
	delete(s.BackupSchedules, appID)
	delete(s.PendingPrunes, appID)
}
