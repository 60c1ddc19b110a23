package api

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/appversion"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// updateAvailable is the version an app's catalog entry offers when it is
// newer than the app's (appversion.Newer), else nil.
func updateAvailable(s *fsm.State, a fsm.App) *string {
	if a.Adopted || a.CatalogID == "" {
		return nil
	}
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok || !appversion.Newer(e.Version, a.CatalogVersion) {
		return nil
	}
	v := e.Version
	return &v
}

// updatePolicyOut fills in the update fields of an app's JSON.
func updatePolicyOut(s *fsm.State, a fsm.App, out *appJSON) {
	out.UpdateAvailable = updateAvailable(s, a)
	out.AutoUpdate = a.Updates.Policy()
	if a.Updates != nil {
		out.MaintenanceWindow = a.Updates.Window
	}
	out.MaintenanceWindowMinutes = a.Updates.Minutes()
}

// updateFilter reads ?update_available= (true or false); nil when absent.
func updateFilter(rq *request) (*bool, error) {
	v, ok := rq.r.URL.Query()["update_available"]
	if !ok {
		return nil, nil
	}
	b, err := strconv.ParseBool(v[0])
	if err != nil || len(v) > 1 {
		return nil, problem.E(problem.Invalid, "update_available: must be true or false")
	}
	return &b, nil
}

// updateApp moves an app to the version its catalog entry offers: back
// up, push the new Compose document and .env additions, pull, recreate,
// check health, roll back to the backup on failure. An app is pinned to
// its version until it is updated: "version", when given, must be the
// version the catalog offers (it then forces the update even if it is not
// newer); without it, an update with nothing newer is refused.
func (a *API) updateApp(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Version *string `json:"version"`
	}
	if len(bytes.TrimSpace(rq.body)) > 0 {
		if err := rq.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	if app.Adopted {
		return 0, nil, problem.E(problem.Conflict, "app %s is adopted: it has no Compose stack of Proximity's to update", app.ID)
	}
	var e catalog.Entry
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { e, ok = s.CatalogEntry(app.CatalogID) })
	if !ok {
		return 0, nil, problem.E(problem.Conflict, "app %s: its catalog entry %q is no longer in the catalog", app.ID, app.CatalogID)
	}
	switch {
	case in.Version != nil && *in.Version == "":
		return 0, nil, problem.E(problem.Invalid, "version: must not be empty (the catalog offers %s)", e.Version)
	case in.Version != nil && (*in.Version == app.CatalogVersion || appversion.Compare(*in.Version, app.CatalogVersion) == 0 && *in.Version != e.Version):
		return 0, nil, problem.E(problem.Conflict, "app %s is already at version %s", app.ID, app.CatalogVersion)
	case in.Version != nil && *in.Version != e.Version:
		return 0, nil, problem.E(problem.Invalid, "version: %q is not available; the catalog offers %s of %s (the app is at %s)",
			*in.Version, e.Version, e.ID, app.CatalogVersion)
	case in.Version == nil && !appversion.Newer(e.Version, app.CatalogVersion):
		return 0, nil, problem.E(problem.Conflict, "app %s is already at version %s: the catalog offers nothing newer (%s); give \"version\" to update to %s anyway",
			app.ID, app.CatalogVersion, e.Version, e.Version)
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdAppAction, RequestID: rq.key, AppAction: &fsm.AppActionCmd{
		ID: app.ID, Op: fsm.OpUpdate, Owner: owner(rq), BackupID: NewID("bak_"), At: a.now(),
		Version: e.Version, ExpectVersion: app.CatalogVersion}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

// updatePolicyInput is the update-policy part of a PATCH of an app.
type updatePolicyInput struct {
	AutoUpdate               *string `json:"auto_update"`
	MaintenanceWindow        *string `json:"maintenance_window"`
	MaintenanceWindowMinutes *int    `json:"maintenance_window_minutes"`
}

func (p updatePolicyInput) given() bool {
	return p.AutoUpdate != nil || p.MaintenanceWindow != nil || p.MaintenanceWindowMinutes != nil
}

// patchUpdatePolicy sets an app's update policy (owner or admin).
func (a *API) patchUpdatePolicy(rq *request, app fsm.App, p updatePolicyInput) (int, any, error) {
	if err := fsm.ValidateUpdatePolicy(p.AutoUpdate, p.MaintenanceWindow, p.MaintenanceWindowMinutes); err != nil {
		return 0, nil, err
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetUpdatePolicy, RequestID: rq.key, SetUpdatePolicy: &fsm.SetUpdatePolicyCmd{
		ID: app.ID, Owner: owner(rq), AutoUpdate: p.AutoUpdate, Window: p.MaintenanceWindow, WindowMinutes: p.MaintenanceWindowMinutes, At: a.now()}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.appView(*r.App), nil
}
