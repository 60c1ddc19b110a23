package fsm

import (
	"slices"
	"sort"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/validate"
)

// AppSettingPurpose binds a sealed secret setting to its app and name, so
// a sealed value cannot be moved to another app or variable.
func AppSettingPurpose(appID, name string) string { return "app-setting/" + appID + "/" + name }

// App statuses. Transitional ones last while an operation runs.
const (
	AppDeploying  = "deploying"
	AppRunning    = "running"
	AppStopped    = "stopped"
	AppError      = "error"
	AppStarting   = "starting"
	AppStopping   = "stopping"
	AppRestarting = "restarting"
	AppDeleting   = "deleting"
	AppBackingUp  = "backing-up"
	AppRestoring  = "restoring"
	AppUpdating   = "updating"
	AppCloning    = "cloning"
	// AppReconfiguring: new settings are being written and applied.
	AppReconfiguring = "reconfiguring"
)

// App operations (at most one at a time per app).
const (
	OpDeploy       = "deploy"
	OpStart        = "start"
	OpStop         = "stop"
	OpRestart      = "restart"
	OpDelete       = "delete"
	OpBackup       = "backup"
	OpRestore      = "restore"
	OpUpdate       = "update"
	OpDeleteBackup = "delete_backup"
	OpClone        = "clone"
	// OpCloneSource marks the source of a clone busy; the clone's target
	// carries the stages.
	OpCloneSource = "clone-source"
	OpAdopt       = "adopt"
	// OpReconfigure writes changed settings into the app's .env and, for
	// a running app, recreates its stack and checks its health, rolling
	// back to the previous .env on failure.
	OpReconfigure = "reconfigure"
)

// Backup statuses. A backup is "creating" only while its operation runs.
const (
	BackupCreating = "creating"
	BackupReady    = "ready"
	BackupFailed   = "failed"
)

// Backup is a vzdump archive of an app.
type Backup struct {
	ID        string    `json:"id"`
	AppID     string    `json:"app_id"`
	Node      string    `json:"node"`
	Volid     string    `json:"volid,omitempty"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"` // manual, pre-update
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	DoneAt    time.Time `json:"done_at,omitzero"`
}

// maxAppLog bounds an app's deployment log; the oldest lines go first.
const maxAppLog = 1000

// LogLine is one line of an app's log.
type LogLine struct {
	At  time.Time `json:"at"`
	Msg string    `json:"msg"`
}

// App is a deployed catalog app: its spec, where it runs, and the state of
// the operation in progress.
type App struct {
	ID             string            `json:"id"`
	Owner          string            `json:"owner"`
	CatalogID      string            `json:"catalog_id"`
	CatalogVersion string            `json:"catalog_version"`
	Hostname       string            `json:"hostname"`
	Node           string            `json:"node"`
	VMID           int               `json:"vmid"`
	ReservationID  string            `json:"reservation_id"`
	PublicPorts    []int             `json:"public_ports"`
	IP             string            `json:"ip,omitempty"`
	ContainerIP    string            `json:"container_ip,omitempty"` // as the deploy observed it; later reports do not move it
	Resources      catalog.Resources `json:"resources"`
	Environment    map[string]string `json:"environment,omitempty"` // caller's values (apps deployed before settings existed)
	// Settings are the values of the catalog entry's settings that are not
	// secrets, defaults filled in. SealedSettings are the secret values the
	// caller gave, sealed under the cluster key (AppSettingPurpose); the
	// secrets the agent generates never come here. SecretSettings names
	// every secret setting of the app, given or generated.
	Settings       map[string]string          `json:"settings,omitempty"`
	SealedSettings map[string]*secrets.Sealed `json:"sealed_settings,omitempty"`
	SecretSettings []string                   `json:"secret_settings,omitempty"`
	// PendingSettings are the changes a reconfigure operation applies;
	// they become Settings and SealedSettings only if it succeeds.
	PendingSettings *SettingsChange `json:"pending_settings,omitempty"`
	// Adopted apps are containers made outside Proximity: they have no
	// Compose stack of ours, and deleting one only releases it.
	Adopted bool `json:"adopted,omitempty"`
	// Updates are the app's update policy and what the updater noticed
	// (updates.go).
	Updates      *AppUpdates       `json:"updates,omitempty"`
	InternalPort int               `json:"internal_port,omitempty"`
	Status       string            `json:"status"`
	PrevStatus   string            `json:"prev_status,omitempty"`
	Op           string            `json:"op,omitempty"`
	OpIndex      uint64            `json:"op_index,omitempty"` // log index the operation started at: names its tasks
	OpArgs       map[string]string `json:"op_args,omitempty"`
	Step         string            `json:"step,omitempty"`
	Attempt      int               `json:"attempt,omitempty"`
	TaskID       string            `json:"task_id,omitempty"`
	Error        string            `json:"error,omitempty"`
	Log          []LogLine         `json:"log,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// CatalogState is the catalog every server serves.
// It is the builtin source's; the added sources are State.CatalogSources
// (catalog.go).
type CatalogState struct {
	Entries []catalog.Entry `json:"entries"`
	Source  string          `json:"source"`
	At      time.Time       `json:"at"`
	// Report is the builtin source's report (catalog.go).
	Report *SourceReport `json:"report,omitempty"`
}

// CreateAppCmd reserves the app's VMID, ports and hostname and records
// the app, in one step.
type CreateAppCmd struct {
	App     App        `json:"app"`
	Reserve ReserveCmd `json:"reserve"`
}

// AppStepCmd moves an app's operation forward. It applies only if the app
// is still at ExpectOp/ExpectStep/ExpectTask, so a controller acting on a
// stale view changes nothing.
type AppStepCmd struct {
	ID         string            `json:"id"`
	ExpectOp   string            `json:"expect_op"`
	ExpectStep string            `json:"expect_step"`
	ExpectTask string            `json:"expect_task"`
	Step       string            `json:"step"`
	TaskID     string            `json:"task_id"`
	Attempt    int               `json:"attempt"`
	Status     string            `json:"status,omitempty"`  // set with Done, or on error
	Done       bool              `json:"done,omitempty"`    // the operation ended
	Release    bool              `json:"release,omitempty"` // free the reservation (a deploy that failed for good)
	SetArgs    map[string]string `json:"set_args,omitempty"`
	// Backup updates the backup record of the operation.
	Backup      *Backup `json:"backup,omitempty"`
	ContainerIP string  `json:"container_ip,omitempty"`
	// Cleanup records a removal to retry.
	Cleanup *Cleanup `json:"cleanup,omitempty"`
	// UpdatedTo, with Done, ends an update that succeeded: the app's
	// catalog version becomes its target version (updates.go).
	UpdatedTo string    `json:"updated_to,omitempty"`
	Error     string    `json:"error,omitempty"`
	VMID      int       `json:"vmid,omitempty"`
	Log       []string  `json:"log,omitempty"`
	At        time.Time `json:"at"`
}

// AppActionCmd starts an operation on an app. Owner, when set, must own
// it (the API passes the caller for users; admins act on any app).
type AppActionCmd struct {
	ID    string    `json:"id"`
	Op    string    `json:"op"`
	Owner string    `json:"owner,omitempty"`
	At    time.Time `json:"at"`
	// BackupID names the backup to make (backup, update) or use
	// (restore, delete_backup).
	BackupID string `json:"backup_id,omitempty"`
	// Settings are a reconfigure's changes.
	Settings *SettingsChange `json:"settings,omitempty"`
	// Version is the catalog version an update moves the app to; it must
	// be the version its catalog entry offers. ExpectVersion, when set, is
	// the version the app must be at (updates.go).
	Version       string `json:"version,omitempty"`
	ExpectVersion string `json:"expect_version,omitempty"`
}

// SettingsChange is a reconfigure's new values: plain ones, and secret
// ones sealed for fsm.AppSettingPurpose(app, name).
type SettingsChange struct {
	Settings map[string]string          `json:"settings,omitempty"`
	Sealed   map[string]*secrets.Sealed `json:"sealed,omitempty"`
}

// RemoveAppCmd forgets a deleted app and releases its reservation.
type RemoveAppCmd struct {
	ID string `json:"id"`
}

func (s *State) setCatalog(c CatalogState) error {
	if len(c.Entries) == 0 {
		return problem.E(problem.Invalid, "catalog: no entries")
	}
	cp := c
	s.Catalog = &cp
	return nil
}

func (a *App) log(at time.Time, msgs ...string) {
	for _, m := range msgs {
		a.Log = append(a.Log, LogLine{At: at.UTC(), Msg: m})
	}
	if len(a.Log) > maxAppLog {
		a.Log = append([]LogLine(nil), a.Log[len(a.Log)-maxAppLog:]...)
	}
}

func (s *State) createApp(index uint64, c CreateAppCmd) (*App, error) {
	a := c.App
	if a.ID == "" || a.Owner == "" {
		return nil, problem.E(problem.Invalid, "app: id and owner required")
	}
	if _, ok := s.Apps[a.ID]; ok {
		return nil, problem.E(problem.Conflict, "app %s exists already", a.ID)
	}
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok {
		return nil, problem.E(problem.NotFound, "catalog_id: %q is not in the catalog", a.CatalogID)
	}
	if _, ok := s.Nodes[c.Reserve.Node]; !ok {
		return nil, problem.E(problem.NotFound, "node: %q is not enrolled", c.Reserve.Node)
	}
	if err := s.checkQuota(a.Owner, a.Resources); err != nil {
		return nil, err
	}
	r, err := s.reserve(index, &c.Reserve)
	if err != nil {
		return nil, err
	}
	a.CatalogVersion, a.Hostname, a.Node, a.VMID, a.ReservationID = e.Version, r.Hostname, r.Node, r.VMID, r.ID
	a.PublicPorts, a.IP = r.PublicPorts, r.IP
	a.Status, a.Op, a.Step, a.Attempt, a.TaskID, a.Error, a.OpIndex = AppDeploying, OpDeploy, "", 1, "", "", index
	a.Log = nil
	a.log(a.CreatedAt, "deploy of "+e.Name+" "+e.Version+" requested on node "+r.Node)
	a.UpdatedAt = a.CreatedAt
	cp := a
	s.Apps[a.ID] = &cp
	out := cp
	return &out, nil
}

func (s *State) appStep(c AppStepCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	if a.Op != c.ExpectOp || a.Step != c.ExpectStep || a.TaskID != c.ExpectTask {
		return nil, problem.E(problem.Conflict, "app %s moved on (now %s/%s)", c.ID, a.Op, a.Step)
	}
	a.Step, a.TaskID, a.Attempt = c.Step, c.TaskID, c.Attempt
	for k, v := range c.SetArgs {
		if a.OpArgs == nil {
			a.OpArgs = map[string]string{}
		}
		a.OpArgs[k] = v
	}
	if c.Backup != nil {
		if b, ok := s.Backups[c.Backup.ID]; ok && b.AppID == a.ID {
			if c.Backup.Status == "" {
				delete(s.Backups, b.ID)
				s.dropPrune(a.ID, b.ID)
			} else {
				b.Status, b.Error, b.DoneAt = c.Backup.Status, c.Backup.Error, c.At.UTC()
				if c.Backup.Volid != "" {
					b.Volid = c.Backup.Volid
				}
				if b.Status == BackupReady {
					s.planPrune(a.ID) // retention runs after each successful backup
				}
			}
		}
	}
	if c.VMID != 0 {
		a.VMID = c.VMID
	}
	if c.ContainerIP != "" && a.ContainerIP == "" {
		a.ContainerIP = c.ContainerIP
	}
	if c.Error != "" {
		a.Error = c.Error
	} else if c.Done && c.Status != AppError {
		a.Error = "" // an operation that succeeded clears the last failure
	}
	if c.Release && a.ReservationID != "" {
		if _, ok := s.Reservations[a.ReservationID]; ok {
			if err := s.release(a.ReservationID); err != nil {
				return nil, err
			}
		}
		a.ReservationID, a.VMID, a.PublicPorts, a.IP, a.ContainerIP = "", 0, nil, "", ""
	}
	if c.Cleanup != nil && c.Cleanup.ID != "" {
		cp := *c.Cleanup
		cp.CreatedAt = c.At.UTC()
		s.Cleanups[cp.ID] = &cp
	}
	if c.Done && a.Op == OpClone {
		if src, ok := s.Apps[a.OpArgs["source"]]; ok && src.Op == OpCloneSource {
			src.Op = ""
			src.log(c.At, "clone "+a.ID+" ended")
		}
	}
	if c.Done && a.Op == OpUpdate {
		s.updateDone(a, c)
	}
	if c.Done && a.Op == OpReconfigure {
		if c.Error == "" && c.Status != AppError {
			a.applySettings(a.PendingSettings)
		}
		a.PendingSettings = nil
	}
	if c.Done && a.Op == OpDeleteBackup {
		// A prune's delete that failed is not retried until the next
		// backup plans the prune again.
		s.dropPrune(a.ID, a.OpArgs["restore_backup"])
	}
	if c.Done {
		// A backup never outlives its operation "creating".
		if id := a.OpArgs["backup"]; id != "" {
			if b, ok := s.Backups[id]; ok && b.Status == BackupCreating {
				b.Status, b.Error, b.DoneAt = BackupFailed, "the operation ended before the backup was made", c.At.UTC()
			}
		}
		a.Op, a.Step, a.TaskID, a.Attempt, a.OpArgs, a.PrevStatus = "", "", "", 0, nil, ""
	}
	if c.Status != "" {
		a.Status = c.Status
	}
	a.log(c.At, c.Log...)
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

// transitions: from which statuses an operation may start, and the status
// it shows meanwhile.
var transitions = map[string]struct {
	from   []string
	during string
}{
	OpStart:        {[]string{AppStopped, AppError}, AppStarting},
	OpStop:         {[]string{AppRunning, AppError}, AppStopping},
	OpRestart:      {[]string{AppRunning, AppError}, AppRestarting},
	OpDelete:       {[]string{AppRunning, AppStopped, AppError}, AppDeleting},
	OpBackup:       {[]string{AppRunning, AppStopped}, AppBackingUp},
	OpRestore:      {[]string{AppRunning, AppStopped, AppError}, AppRestoring},
	OpUpdate:       {[]string{AppRunning}, AppUpdating},
	OpDeleteBackup: {[]string{AppRunning, AppStopped, AppError}, ""},
	OpReconfigure:  {[]string{AppRunning, AppStopped}, AppReconfiguring},
}

func (s *State) appAction(index uint64, c AppActionCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok || (c.Owner != "" && a.Owner != c.Owner) {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	t, ok := transitions[c.Op]
	if !ok {
		return nil, problem.E(problem.Invalid, "action: %q must be start, stop, restart or delete", c.Op)
	}
	if a.Op != "" {
		if a.Op == OpDelete || a.Op == OpCloneSource {
			return nil, problem.E(problem.Conflict, "app %s is busy: %s in progress", c.ID, a.Op)
		}
		return nil, problem.E(problem.Conflict, "app %s is busy: %s in progress (wait for it, or end it with the action cancel)", c.ID, a.Op)
	}
	if a.ReservationID == "" && c.Op != OpDelete {
		return nil, problem.E(problem.Conflict, "app %s has no container (its deploy failed); delete it", c.ID)
	}
	if a.Adopted && (c.Op == OpUpdate || c.Op == OpReconfigure) {
		return nil, problem.E(problem.Conflict, "app %s is adopted: it has no Compose stack of Proximity's to %s", c.ID, c.Op)
	}
	allowed := false
	for _, f := range t.from {
		allowed = allowed || a.Status == f
	}
	if !allowed {
		return nil, problem.E(problem.Conflict, "app %s is %s; cannot %s it", c.ID, a.Status, c.Op)
	}
	args := map[string]string{}
	switch c.Op {
	case OpBackup, OpUpdate:
		if c.Op == OpUpdate {
			if err := s.checkUpdate(a, c, args); err != nil {
				return nil, err
			}
		}
		if c.BackupID == "" {
			return nil, problem.E(problem.Invalid, "backup_id: required")
		}
		if _, ok := s.Backups[c.BackupID]; ok {
			return nil, problem.E(problem.Conflict, "backup %s exists already", c.BackupID)
		}
		reason := BackupReasonManual
		if c.Op == OpUpdate {
			reason = BackupReasonPreUpdate
		}
		s.backupArgs(a.ID, args)
		s.Backups[c.BackupID] = &Backup{ID: c.BackupID, AppID: a.ID, Node: a.Node, Status: BackupCreating, Reason: reason, CreatedAt: c.At.UTC()}
		args["backup"] = c.BackupID
	case OpRestore, OpDeleteBackup:
		b, ok := s.Backups[c.BackupID]
		if !ok || b.AppID != a.ID {
			return nil, problem.E(problem.NotFound, "backup %s does not exist", c.BackupID)
		}
		if c.Op == OpRestore && b.Status != BackupReady {
			return nil, problem.E(problem.Conflict, "backup %s is %s, not ready", b.ID, b.Status)
		}
		args["restore_backup"], args["volid"], args[ArgBackupNode] = b.ID, b.Volid, b.Node
	case OpReconfigure:
		if c.Settings == nil || len(c.Settings.Settings)+len(c.Settings.Sealed) == 0 {
			return nil, problem.E(problem.Invalid, "settings: at least one setting to change is required")
		}
		a.PendingSettings = c.Settings
	}
	a.PrevStatus = a.Status
	a.Op, a.Step, a.Attempt, a.TaskID, a.OpArgs, a.OpIndex = c.Op, "", 1, "", args, index
	if t.during != "" {
		a.Status = t.during
	}
	a.log(c.At, c.Op+" requested")
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

func (s *State) removeApp(c RemoveAppCmd) error {
	a, ok := s.Apps[c.ID]
	if !ok {
		return nil // removed already
	}
	if _, ok := s.Reservations[a.ReservationID]; ok {
		if err := s.release(a.ReservationID); err != nil {
			return err
		}
	}
	for id, b := range s.Backups {
		if b.AppID == c.ID {
			delete(s.Backups, id)
		}
	}
	delete(s.Apps, c.ID)
	s.forgetBackupState(c.ID)
	return nil
}

// AppBackups lists an app's backups, newest first.
func (s *State) AppBackups(appID string) []Backup {
	var out []Backup
	for _, b := range s.Backups {
		if b.AppID == appID {
			out = append(out, *b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// App returns one app.
func (s *State) App(id string) (App, bool) {
	a, ok := s.Apps[id]
	if !ok {
		return App{}, false
	}
	return *a, true
}

// ListApps returns the apps of owner (all apps when owner is empty), by
// creation, a page at a time.
func (s *State) ListApps(owner string, page, perPage int) ([]App, int) {
	var all []*App
	for _, a := range s.Apps {
		if owner == "" || a.Owner == owner {
			all = append(all, a)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.Before(all[j].CreatedAt)
		}
		return all[i].ID < all[j].ID
	})
	var out []App
	for _, a := range validate.PageOf(all, page, perPage) {
		out = append(out, *a)
	}
	return out, len(all)
}

// BusyApps lists the apps with an operation in progress, by ID.
func (s *State) BusyApps() []App {
	var out []App
	for _, a := range s.Apps {
		if a.Op != "" && a.Op != OpCloneSource {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// applySettings makes a reconfigure's changes the app's settings.
func (a *App) applySettings(ch *SettingsChange) {
	if ch == nil {
		return
	}
	if len(ch.Settings) > 0 {
		next := make(map[string]string, len(a.Settings)+len(ch.Settings))
		for k, v := range a.Settings {
			next[k] = v
		}
		for k, v := range ch.Settings {
			next[k] = v
		}
		a.Settings = next
	}
	if len(ch.Sealed) > 0 {
		next := make(map[string]*secrets.Sealed, len(a.SealedSettings)+len(ch.Sealed))
		names := append([]string(nil), a.SecretSettings...)
		for k, v := range a.SealedSettings {
			next[k] = v
		}
		for k, v := range ch.Sealed {
			next[k] = v
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		a.SealedSettings, a.SecretSettings = next, names
	}
}
