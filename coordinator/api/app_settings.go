package api

import (
	"encoding/json"
	"fmt"
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
