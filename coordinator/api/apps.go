package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// appJSON is an app as the API shows it.
type appJSON struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Hostname       string            `json:"hostname"`
	VMID           int               `json:"vmid"`
	Node           string            `json:"node"`
	Owner          string            `json:"owner"`
	CatalogID      string            `json:"catalog_id"`
	CatalogVersion string            `json:"catalog_version"`
	PublicPorts    []int             `json:"public_ports"`
	IP             string            `json:"ip,omitempty"`
	Resources      catalog.Resources `json:"resources"`
	Operation      string            `json:"operation,omitempty"`
	Step           string            `json:"step,omitempty"`
	Error          string            `json:"error,omitempty"`
	// Settings are the values of the app's settings that are not secrets;
	// SecretSettings names its secret settings, never their values.
	Settings       map[string]string `json:"settings"`
	SecretSettings []string          `json:"secret_settings"`
	// URLs are where people open the app (fsm.State.AppURLs).
	URLs []fsm.AppURL `json:"urls"`
	// UpdateAvailable is the newer version its catalog entry offers
	// (null: none); the policy fields are updates.go's.
	UpdateAvailable          *string `json:"update_available"`
	AutoUpdate               string  `json:"auto_update"`
	MaintenanceWindow        string  `json:"maintenance_window"`
	MaintenanceWindowMinutes int     `json:"maintenance_window_minutes"`
	CreatedAt                string  `json:"created_at"`
	UpdatedAt                string  `json:"updated_at"`
}

// appView is app x as the API shows it, with its URLs from the state.
func (a *API) appView(x fsm.App) appJSON {
	var out appJSON
	a.b.FSM().Read(func(s *fsm.State) { out = appIn(s, x) })
	return out
}

// appIn is app a as the API shows it; s is the state it is read from
// (under the FSM's read lock), which gives its URLs.
func appIn(s *fsm.State, a fsm.App) appJSON {
	ports := a.PublicPorts
	if ports == nil {
		ports = []int{}
	}
	out := appJSON{ID: a.ID, Status: a.Status, Hostname: a.Hostname, VMID: a.VMID, Node: a.Node, Owner: a.Owner,
		CatalogID: a.CatalogID, CatalogVersion: a.CatalogVersion, PublicPorts: ports, IP: a.IP, Resources: a.Resources,
		Operation: a.Op, Step: a.Step, Error: a.Error, Settings: appSettings(a), SecretSettings: append([]string{}, a.SecretSettings...),
		URLs:      s.AppURLs(a),
		CreatedAt: a.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), UpdatedAt: a.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z07:00")}
	updatePolicyOut(s, a, &out)
	return out
}

// ownApp reads app {id} if the caller may see it: its owner or an admin.
// Anyone else gets the same 404 as for a missing app.
func (a *API) ownApp(rq *request) (fsm.App, error) {
	id := rq.r.PathValue("id")
	var app fsm.App
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { app, ok = s.App(id) })
	if !ok || (rq.user.Role != fsm.RoleAdmin && app.Owner != rq.user.ID) {
		return fsm.App{}, problem.E(problem.NotFound, "app %s does not exist", id)
	}
	return app, nil
}

// owner is the owner filter for the caller: admins see every app.
func owner(rq *request) string {
	if rq.user.Role == fsm.RoleAdmin {
		return ""
	}
	return rq.user.ID
}

func (a *API) createApp(rq *request) (int, any, error) {
	var in struct {
		CatalogID   string                     `json:"catalog_id"`
		Hostname    string                     `json:"hostname"`
		Node        string                     `json:"node"`
		Settings    map[string]json.RawMessage `json:"settings"`
		Environment map[string]json.RawMessage `json:"environment"`
		Resources   *catalog.Resources         `json:"resources"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	host, err := validate.Hostname("hostname", in.Hostname)
	if err != nil {
		return 0, nil, err
	}
	var e catalog.Entry
	var ok, loaded bool
	a.b.FSM().Read(func(s *fsm.State) { e, ok = s.CatalogEntry(in.CatalogID); loaded = s.Catalog != nil })
	if !ok && !loaded {
		// A new cluster's leader loads the catalog moments after it is
		// elected: until then no entry is known, and none is wrong.
		return 0, nil, problem.E(problem.Unavailable, "the catalog is not loaded yet; retry in a moment")
	}
	if !ok {
		return 0, nil, problem.E(problem.Invalid, "catalog_id: %q is not in the catalog", in.CatalogID)
	}
	res := e.Resources
	if in.Resources != nil {
		res = *in.Resources
		if !res.Valid() {
			return 0, nil, problem.E(problem.Invalid, "resources: cores 1-64, memory_mb 128-262144, disk_gb 1-4096")
		}
	}
	given, err := settingsInput(in.Settings, in.Environment)
	if err != nil {
		return 0, nil, err
	}
	resolved, err := catalog.ValidateSettings(e, given)
	if err != nil {
		return 0, nil, err
	}
	if in.Node != "" {
		if err := validate.NodeName("node", in.Node); err != nil {
			return 0, nil, err
		}
	}
	now := a.now()
	id := NewID("app_")
	app := fsm.App{ID: id, Owner: rq.user.ID, CatalogID: e.ID, Resources: res, CreatedAt: now}
	if err := a.setSettings(&app, e, resolved); err != nil {
		return 0, nil, err
	}
	unlock, node, err := a.place(rq.ctx, in.Node, res)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdCreateApp, RequestID: rq.key, CreateApp: &fsm.CreateAppCmd{
		App: app,
		Reserve: fsm.ReserveCmd{ID: NewID("res_"), Hostname: host, Node: node, PublicPorts: len(e.Ports),
			IP: a.staticIPs(), Owner: "app:" + id, CreatedAt: now},
	}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

// staticIPs reports whether deploys take an address from the registry.
func (a *API) staticIPs() bool {
	var subnet string
	a.b.FSM().Read(func(s *fsm.State) { subnet = s.Network.Subnet })
	return subnet != ""
}

func (a *API) listApps(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	host := q.Get("hostname")
	if host != "" {
		if host, err = validate.Hostname("hostname", host); err != nil {
			return 0, nil, err
		}
	}
	upd, err := updateFilter(rq)
	if err != nil {
		return 0, nil, err
	}
	out := page[appJSON]{Items: []appJSON{}, Page: pg, PerPage: per}
	a.b.FSM().Read(func(s *fsm.State) {
		if host == "" && upd == nil {
			apps, total := s.ListApps(owner(rq), pg, per)
			out.Total = total
			for _, x := range apps {
				out.Items = append(out.Items, appIn(s, x))
			}
			return
		}
		// hostname= names the caller's apps by hostname (the CLI's
		// names): usually one, more when a failed app kept a hostname
		// that a later app took. update_available= keeps the apps with
		// (true) or without (false) a newer version in the catalog.
		all, _ := s.ListApps(owner(rq), 1, math.MaxInt)
		var named []fsm.App
		for _, x := range all {
			if (host == "" || strings.EqualFold(x.Hostname, host)) && (upd == nil || (updateAvailable(s, x) != nil) == *upd) {
				named = append(named, x)
			}
		}
		out.Total = len(named)
		for _, x := range validate.PageOf(named, pg, per) {
			out.Items = append(out.Items, appIn(s, x))
		}
	})
	return http.StatusOK, out, nil
}

func (a *API) getApp(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.appView(app), nil
}

func (a *API) appAction(rq *request, op string) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdAppAction, RequestID: rq.key, AppAction: &fsm.AppActionCmd{
		ID: app.ID, Op: op, Owner: owner(rq), At: a.now()}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

func (a *API) postAppAction(rq *request) (int, any, error) {
	// Ownership first: someone else's app is 404 whatever the body says.
	if _, err := a.ownApp(rq); err != nil {
		return 0, nil, err
	}
	var in struct {
		Action string `json:"action"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	switch in.Action {
	case fsm.OpStart, fsm.OpStop, fsm.OpRestart:
	case actionCancel:
		return a.cancelApp(rq)
	default:
		return 0, nil, problem.E(problem.Invalid, "action: %q must be start, stop, restart or cancel", in.Action)
	}
	return a.appAction(rq, in.Action)
}

// actionCancel ends the operation in progress (see fsm.CancelAppCmd).
const actionCancel = "cancel"

// cancelApp ends app {id}'s running operation: its task is fenced and the
// operation's undo runs (docs/api.md, "Cancel"); 409 when none runs.
func (a *API) cancelApp(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdCancelApp, RequestID: rq.key, CancelApp: &fsm.CancelAppCmd{
		ID: app.ID, Owner: owner(rq), By: rq.user.Name, At: a.now()}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

func (a *API) deleteApp(rq *request) (int, any, error) { return a.appAction(rq, fsm.OpDelete) }

// appMetrics answers what the node's agent last reported for the app's
// container; a counter not reported is null, never a made-up zero. With
// range (a duration up to usage.Window), history adds the samples this
// leader took over that time, oldest first (metrics_history.go).
func (a *API) appMetrics(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	span, err := metricsRange(rq.r.URL.Query().Get("range"))
	if err != nil {
		return 0, nil, err
	}
	out := map[string]any{"status": nil, "cpu": nil, "mem": nil, "max_mem": nil, "disk": nil, "max_disk": nil,
		"net_in": nil, "net_out": nil, "uptime": nil, "reported_at": nil}
	if a.agents != nil && app.VMID != 0 {
		if li, ok := a.agents.NodeLive(app.Node); ok {
			for _, g := range li.Guests {
				if int(g.Vmid) == app.VMID {
					out["status"], out["cpu"], out["mem"], out["max_mem"] = g.Status, g.Cpu, g.Mem, g.MaxMem
					out["disk"], out["max_disk"], out["net_in"], out["net_out"], out["uptime"] = g.Disk, g.MaxDisk, g.NetIn, g.NetOut, g.Uptime
					out["reported_at"] = li.LastHeartbeat.UTC()
				}
			}
		}
	}
	if span > 0 {
		out["history"] = a.metricsHistory(app, span)
	}
	return http.StatusOK, out, nil
}

// cloneApp makes a new app, owned by the caller, from the container of
// app {id}: snapshot, clone, remove the snapshot, start.
func (a *API) cloneApp(rq *request) (int, any, error) {
	src, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Hostname string `json:"hostname"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	host, err := validate.Hostname("hostname", in.Hostname)
	if err != nil {
		return 0, nil, err
	}
	unlock, _, err := a.place(rq.ctx, src.Node, src.Resources)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	now := a.now()
	id := NewID("app_")
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdCloneApp, RequestID: rq.key, CloneApp: &fsm.CloneAppCmd{
		SourceID: src.ID, Owner: owner(rq),
		App:     fsm.App{ID: id, Owner: src.Owner, CreatedAt: now},
		Reserve: fsm.ReserveCmd{ID: NewID("res_"), Hostname: host, IP: a.staticIPs(), Owner: "app:" + id, CreatedAt: now},
	}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}
