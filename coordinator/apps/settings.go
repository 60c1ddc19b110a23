package apps

import (
	"fmt"

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

// opName names an operation in the files it leaves on the node.
func opName(a fsm.App) string { return fmt.Sprintf("%s-%d", a.ID, a.OpIndex) }

// The reconfigure operation: write the changed settings over the .env
// (the agent keeps the previous file as .env.prev, and every value not
// changed, generated secrets included), recreate the stack, check its
// health. A stopped app only gets the new file: its container is started
// for the write (pct push needs it running) and shut down again, and its
// stack is not recreated. On failure the previous
// file is put back and the stack recreated and checked again; the app's
// recorded settings change only when the operation succeeds.
var (
	stEnvUpdate = stage{name: "env", needsEntry: true, task: func(a fsm.App, e catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		spec := taskspec.EnvSpec{Path: appDir + "/.env", Mode: taskspec.EnvUpdate, Op: opName(a), App: a.ID,
			Values: map[string]string{}, Generate: map[string]int{}}
		for _, s := range e.Settings {
			if s.Secret() && s.Generate > 0 {
				spec.Generate[s.Name] = s.Generate // only if the file lacks it
			}
		}
		if p := a.PendingSettings; p != nil {
			for k, v := range p.Settings {
				spec.Values[k] = v
			}
			if len(p.Sealed) > 0 {
				spec.Sealed = map[string]*secrets.Sealed{}
				for k, v := range p.Sealed {
					spec.Sealed[k] = v
				}
			}
		}
		return taskspec.WriteEnv, spec
	}}
	stEnvRestore = stage{name: "env", task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.WriteEnv, taskspec.EnvSpec{Path: appDir + "/.env", Mode: taskspec.EnvRestore, Op: opName(a)}
	}}
	reconfigureRunning = []stage{stEnvUpdate, stUp, stHealth}
	reconfigureStopped = []stage{stStart, stEnvUpdate, stStop}
	rollbackRunning    = renamed(rollbackPrefix, []stage{stEnvRestore, stUp, stHealth})
	rollbackStopped    = renamed(rollbackPrefix, []stage{stStart, stEnvRestore, stStop})
)

// reconfigureStages are a reconfigure's stages: a stopped app is not
// started.
func reconfigureStages(a fsm.App) []stage {
	if a.PrevStatus == fsm.AppStopped {
		return reconfigureStopped
	}
	return reconfigureRunning
}

// rollbackStages are the stages that undo a's failed operation.
func rollbackStages(a fsm.App) []stage {
	switch {
	case a.Op != fsm.OpReconfigure:
		return rollback
	case a.PrevStatus == fsm.AppStopped:
		return rollbackStopped
	}
	return rollbackRunning
}

// rolledBack is the status and log line of an operation whose rollback
// succeeded.
func rolledBack(a fsm.App) (string, string) {
	if a.Op == fsm.OpReconfigure {
		return a.PrevStatus, "rollback: done; the app runs with its previous settings"
	}
	return fsm.AppRunning, "rollback: done; the app runs as it was before the update"
}
