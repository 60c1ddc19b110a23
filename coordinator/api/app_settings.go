package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// settingsInput merges a request's "settings" and its alias "environment"
// (a name in both is refused) into text values: a JSON string is taken as
// it is, a number or a boolean as its JSON text (8080, true); anything
// else is refused. Every value is checked by dotenv.CheckValue before any
// other rule, so nothing that could break the .env file goes further.
func settingsInput(sets ...map[string]json.RawMessage) (map[string]string, error) {
	fields := []string{"settings", "environment"}
	out := map[string]string{}
	from := map[string]string{}
	var errs []string
	for i, set := range sets {
		names := make([]string, 0, len(set))
		for k := range set {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			f := fields[i] + "." + fmt.Sprintf("%.64s", k)
			if prev, ok := from[k]; ok {
				errs = append(errs, fmt.Sprintf("%s: also given as %s.%s", f, prev, k))
				continue
			}
			v, ok := jsonScalar(set[k])
			if !ok {
				errs = append(errs, f+": must be a string, a number or a boolean")
				continue
			}
			if err := dotenv.CheckValue(k, v); err != nil {
				errs = append(errs, fields[i]+"."+err.Error())
				continue
			}
			out[k], from[k] = v, fields[i]
		}
	}
	if len(errs) > 0 {
		return nil, problem.E(problem.Invalid, "%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func jsonScalar(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return fmt.Sprint(b), true
	}
	return "", false
}

// setSettings records resolved settings on app: plain values as they
// are, secret values sealed under the cluster key for this app and name,
// and the names of every secret setting (given or generated).
func (a *API) setSettings(app *fsm.App, e catalog.Entry, resolved map[string]string) error {
	for _, s := range e.Settings {
		v, given := resolved[s.Name]
		if !s.Secret() {
			if given {
				if app.Settings == nil {
					app.Settings = map[string]string{}
				}
				app.Settings[s.Name] = v
			}
			continue
		}
		if !given && s.Generate == 0 {
			continue
		}
		app.SecretSettings = append(app.SecretSettings, s.Name)
		if !given {
			continue // the agent generates it
		}
		sealed, err := a.b.Sealer().Seal(fsm.AppSettingPurpose(app.ID, s.Name), []byte(v))
		if err != nil {
			return problem.Wrap(problem.Internal, err, "seal a secret setting")
		}
		if app.SealedSettings == nil {
			app.SealedSettings = map[string]*secrets.Sealed{}
		}
		app.SealedSettings[s.Name] = sealed
	}
	sort.Strings(app.SecretSettings)
	return nil
}

// appSettings are the plain values an app shows (never nil).
func appSettings(a fsm.App) map[string]string {
	out := map[string]string{}
	for k, v := range a.Settings {
		out[k] = v
	}
	return out
}

// patchApp changes a running or stopped app's settings: a reconfigure
// operation writes them into the app's .env and, for a running app,
// recreates its stack and checks its health, rolling back on failure. The
// app's recorded settings change only if it succeeds.
func (a *API) patchApp(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Settings map[string]json.RawMessage `json:"settings"`
		updatePolicyInput
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.given() {
		if in.Settings != nil {
			return 0, nil, problem.E(problem.Invalid, "settings: change settings and the update policy in separate requests")
		}
		return a.patchUpdatePolicy(rq, app, in.updatePolicyInput)
	}
	if len(in.Settings) == 0 {
		return 0, nil, problem.E(problem.Invalid, "settings: at least one setting to change is required (or auto_update, maintenance_window, maintenance_window_minutes)")
	}
	given, err := settingsInput(in.Settings)
	if err != nil {
		return 0, nil, err
	}
	var e catalog.Entry
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { e, ok = s.CatalogEntry(app.CatalogID) })
	if !ok {
		return 0, nil, problem.E(problem.Conflict, "app %s: its catalog entry %q is no longer in the catalog", app.ID, app.CatalogID)
	}
	changes, err := catalog.ValidateChanges(e, given)
	if err != nil {
		return 0, nil, err
	}
	ch := &fsm.SettingsChange{}
	for k, v := range changes {
		if s, _ := e.Setting(k); !s.Secret() {
			if ch.Settings == nil {
				ch.Settings = map[string]string{}
			}
			ch.Settings[k] = v
			continue
		}
		sealed, err := a.b.Sealer().Seal(fsm.AppSettingPurpose(app.ID, k), []byte(v))
		if err != nil {
			return 0, nil, problem.Wrap(problem.Internal, err, "seal a secret setting")
		}
		if ch.Sealed == nil {
			ch.Sealed = map[string]*secrets.Sealed{}
		}
		ch.Sealed[k] = sealed
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdAppAction, RequestID: rq.key, AppAction: &fsm.AppActionCmd{
		ID: app.ID, Op: fsm.OpReconfigure, Owner: owner(rq), At: a.now(), Settings: ch}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}
