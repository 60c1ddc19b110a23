package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
)

// Auto-update policies of an app.
const (
	// AutoUpdateOff: updates run only when someone asks (the default).
	AutoUpdateOff = "off"
	// AutoUpdateNotify: the updater records an app event when a newer
	// version becomes available; nothing runs by itself.
	AutoUpdateNotify = "notify"
	// AutoUpdateAuto: as notify, and the updater runs the update inside
	// the app's maintenance window.
	AutoUpdateAuto = "auto"
)

// DefaultWindowMinutes is how long a maintenance window lasts when the
// app does not say; MaxWindowMinutes bounds it (a week).
const (
	DefaultWindowMinutes = 60
	MaxWindowMinutes     = 7 * 24 * 60
)

// AppUpdates is an app's update policy and what the updater noticed.
type AppUpdates struct {
	// AutoUpdate is off (empty means off), notify or auto.
	AutoUpdate string `json:"auto_update,omitempty"`
	// Window is a calendar event (Proxmox's syntax): a maintenance window
	// starts at each of its times and lasts WindowMinutes (0: the
	// default).
	Window        string `json:"window,omitempty"`
	WindowMinutes int    `json:"window_minutes,omitempty"`
	// Notified is the newest version an update notice was recorded for.
	Notified string `json:"notified,omitempty"`
	// Failed is the target version of the last update that did not
	// succeed; the updater does not try it again by itself.
	Failed string `json:"failed,omitempty"`
}

// Policy is the app's auto-update policy ("off" when unset).
func (u *AppUpdates) Policy() string {
	if u == nil || u.AutoUpdate == "" {
		return AutoUpdateOff
	}
	return u.AutoUpdate
}

// Minutes is the length of the app's maintenance window.
func (u *AppUpdates) Minutes() int {
	if u == nil || u.WindowMinutes == 0 {
		return DefaultWindowMinutes
	}
	return u.WindowMinutes
}

// SetUpdatePolicyCmd changes an app's update policy; nil fields stay as
// they are. Owner, when set, must own the app.
type SetUpdatePolicyCmd struct {
	ID            string    `json:"id"`
	Owner         string    `json:"owner,omitempty"`
	AutoUpdate    *string   `json:"auto_update,omitempty"`
	Window        *string   `json:"window,omitempty"`
	WindowMinutes *int      `json:"window_minutes,omitempty"`
	At            time.Time `json:"at"`
}

// UpdateNoticeCmd records that a newer version of an app's catalog entry
// is available (the updater, for apps whose policy is notify or auto).
type UpdateNoticeCmd struct {
	ID string `json:"id"`
	// From is the version the app is at, Version the one available.
	From    string    `json:"from"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
}

// AutoUpdateCmd starts an automatic update and records it in the audit
// log, in one step. Action must be an update with ExpectVersion set: a
// second updater (after a leader change) that acts on the same state
// meets a busy app or one at another version, and changes nothing.
type AutoUpdateCmd struct {
	Action AppActionCmd `json:"action"`
	Audit  AuditRecord  `json:"audit"`
}

// ValidateUpdatePolicy checks a policy's fields; the error names the
// field and the rule.
func ValidateUpdatePolicy(auto, window *string, minutes *int) error {
	if auto != nil && !slices.Contains([]string{AutoUpdateOff, AutoUpdateNotify, AutoUpdateAuto}, *auto) {
		return problem.E(problem.Invalid, "auto_update: must be off, notify or auto")
	}
	if window != nil && *window != "" {
		if err := CheckWindow(*window); err != nil {
			return problem.E(problem.Invalid, "maintenance_window: %v", err)
		}
	}
	if minutes != nil && (*minutes < 1 || *minutes > MaxWindowMinutes) {
		return problem.E(problem.Invalid, "maintenance_window_minutes: must be 1-%d", MaxWindowMinutes)
	}
	return nil
}

func (s *State) setUpdatePolicy(c SetUpdatePolicyCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok || (c.Owner != "" && a.Owner != c.Owner) {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	if err := ValidateUpdatePolicy(c.AutoUpdate, c.Window, c.WindowMinutes); err != nil {
		return nil, err
	}
	u := AppUpdates{}
	if a.Updates != nil {
		u = *a.Updates
	}
	if c.AutoUpdate != nil {
		u.AutoUpdate = *c.AutoUpdate
	}
	if c.Window != nil {
		u.Window = *c.Window
	}
	if c.WindowMinutes != nil {
		u.WindowMinutes = *c.WindowMinutes
	}
	if u.AutoUpdate == AutoUpdateAuto && u.Window == "" {
		return nil, problem.E(problem.Invalid, "maintenance_window: required when auto_update is auto")
	}
	a.Updates = &u
	msg := "update policy: " + u.Policy()
	if u.Window != "" {
		msg += fmt.Sprintf("; maintenance window %q for %d min", u.Window, u.Minutes())
	}
	a.log(c.At, msg)
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

func (s *State) updateNotice(c UpdateNoticeCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	if a.CatalogVersion != c.From {
		return nil, problem.E(problem.Conflict, "app %s is at version %s, not %s", c.ID, a.CatalogVersion, c.From)
	}
	if a.Updates != nil && a.Updates.Notified == c.Version {
		return nil, problem.E(problem.Conflict, "app %s: update %s noticed already", c.ID, c.Version)
	}
	u := AppUpdates{}
	if a.Updates != nil {
		u = *a.Updates
	}
	u.Notified = c.Version
	a.Updates = &u
	a.log(c.At, fmt.Sprintf("update available: %s (the app is at %s)", c.Version, c.From))
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

func (s *State) autoUpdate(index uint64, c AutoUpdateCmd) (*App, error) {
	if c.Action.Op != OpUpdate || c.Action.ExpectVersion == "" {
		return nil, problem.E(problem.Invalid, "auto update: an update with expect_version is required")
	}
	if a, ok := s.Apps[c.Action.ID]; !ok || a.Updates.Policy() != AutoUpdateAuto {
		return nil, problem.E(problem.Conflict, "app %s: its policy is not auto", c.Action.ID)
	}
	a, err := s.appAction(index, c.Action)
	if err != nil {
		return nil, err
	}
	if err := s.appendAudit(AuditCmd{Records: []AuditRecord{c.Audit}, Now: c.Action.At}); err != nil {
		return nil, err
	}
	return a, nil
}

// checkUpdate checks an update's target version against the app and its
// catalog entry, and records it in args. An update without a version (a
// log entry of an earlier version) pulls the same images again.
func (s *State) checkUpdate(a *App, c AppActionCmd, args map[string]string) error {
	if c.ExpectVersion != "" && a.CatalogVersion != c.ExpectVersion {
		return problem.E(problem.Conflict, "app %s is at version %s, not %s", a.ID, a.CatalogVersion, c.ExpectVersion)
	}
	if c.Version == "" {
		return nil
	}
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok {
		return problem.E(problem.Conflict, "app %s: its catalog entry %q is no longer in the catalog", a.ID, a.CatalogID)
	}
	if e.Version != c.Version {
		return problem.E(problem.Conflict, "version: the catalog offers %s of %s, not %s", e.Version, e.ID, c.Version)
	}
	args["version"], args["from_version"] = c.Version, a.CatalogVersion
	return nil
}

// updateDone ends an update: on success the app takes its new version,
// and the settings its new catalog entry adds (defaults, and the names of
// secrets the agent generated); otherwise the target is remembered as
// failed.
func (s *State) updateDone(a *App, c AppStepCmd) {
	to := a.OpArgs["version"]
	if to == "" {
		return
	}
	u := AppUpdates{}
	if a.Updates != nil {
		u = *a.Updates
	}
	if c.UpdatedTo == "" || c.UpdatedTo != to || c.Error != "" {
		u.Failed = to
		a.Updates = &u
		return
	}
	a.CatalogVersion, u.Failed = to, ""
	a.Updates = &u
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok {
		return
	}
	for _, st := range e.Settings {
		if st.Secret() {
			if st.Generate > 0 && !slices.Contains(a.SecretSettings, st.Name) {
				a.SecretSettings = append(a.SecretSettings, st.Name)
				slices.Sort(a.SecretSettings)
			}
			continue
		}
		if _, ok := a.Settings[st.Name]; ok {
			continue
		}
		if _, ok := a.Environment[st.Name]; ok {
			continue
		}
		if a.Settings == nil {
			a.Settings = map[string]string{}
		}
		a.Settings[st.Name] = st.Default
	}
}
