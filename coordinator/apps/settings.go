package apps

import (
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// envSpec is a deploy's .env: the catalog's fixed values, the app's
// settings, its sealed secret settings (opened on the way to the agent),
// and the secrets the agent generates for what was not given.
func envSpec(a fsm.App, e catalog.Entry) taskspec.EnvSpec {
	spec := taskspec.EnvSpec{Path: appDir + "/.env", App: a.ID, Values: map[string]string{}, Generate: map[string]int{}}
	for _, v := range e.Environment {
		if v.Generate > 0 {
			spec.Generate[v.Name] = v.Generate
		} else {
			spec.Values[v.Name] = v.Value
		}
	}
	for _, s := range e.Settings {
		if s.Secret() && s.Generate > 0 {
			spec.Generate[s.Name] = s.Generate
		}
	}
	// Apps deployed before settings existed keep their caller's values.
	for k, v := range a.Environment {
		delete(spec.Generate, k)
		spec.Values[k] = v
	}
	for k, v := range a.Settings {
		delete(spec.Generate, k)
		spec.Values[k] = v
	}
	for _, s := range e.Settings {
		if _, ok := spec.Values[s.Name]; !ok && !s.Secret() {
			spec.Values[s.Name] = "" // declared, not set: empty rather than missing
		}
	}
	if len(a.SealedSettings) > 0 {
		spec.Sealed = map[string]*secrets.Sealed{}
		for k, v := range a.SealedSettings {
			delete(spec.Generate, k)
			spec.Sealed[k] = v
		}
	}
	return spec
}
