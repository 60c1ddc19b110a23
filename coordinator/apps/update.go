package apps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// The update operation moves an app to the version its catalog entry
// offers (OpArgs "version"): back up the container, push the entry's
// Compose document, add to the .env what the new version brings (its
// fixed values, the defaults of settings the app does not have yet, and
// secrets the agent generates if the file lacks them; every existing
// value is kept), pull the images, recreate the stack and check its
// health. On a failure after the backup, the rollback restores the
// pre-update backup (compose file and .env included) and starts the
// stack again. The app's catalog version changes only when the update
// succeeds (AppStepCmd.UpdatedTo).
//
// An update without a target version (a log entry of an earlier
// version) only pulls the same images again.
var (
	stEnvUpgrade = stage{name: "env", needsEntry: true, task: func(a fsm.App, e catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.WriteEnv, upgradeEnv(a, e)
	}}
	updateStages = []stage{stBackup, stCompose, stEnvUpgrade, stPull, stUp, stHealth}
)

// upgradeEnv is the .env change of an update: written over the file with
// the agent's EnvUpdate (the previous file is kept as .env.prev).
func upgradeEnv(a fsm.App, e catalog.Entry) taskspec.EnvSpec {
	spec := taskspec.EnvSpec{Path: appDir + "/.env", Mode: taskspec.EnvUpdate, Op: opName(a), App: a.ID,
		Values: map[string]string{}, Generate: map[string]int{}}
	mine := func(name string) bool {
		_, s := a.Settings[name]
		_, env := a.Environment[name]
		_, sealed := a.SealedSettings[name]
		return s || env || sealed || slices.Contains(a.SecretSettings, name)
	}
	for _, v := range e.Environment {
		if mine(v.Name) {
			continue
		}
		if v.Generate > 0 {
			spec.Generate[v.Name] = v.Generate // only if the file lacks it
		} else {
			spec.Values[v.Name] = v.Value // the version's fixed value
		}
	}
	for _, s := range e.Settings {
		switch {
		case s.Secret() && s.Generate > 0:
			spec.Generate[s.Name] = s.Generate // only if the file lacks it
		case s.Secret() || mine(s.Name):
		default:
			spec.Values[s.Name] = s.Default // a new setting: its default
		}
	}
	return spec
}

// updateStagesOf are the stages of update a.
func updateStagesOf(a fsm.App) []stage {
	if a.OpArgs["version"] == "" {
		return ops[fsm.OpUpdate].stages
	}
	return updateStages
}

// updateMoved stops an update whose catalog entry no longer offers its
// target version (a reload in the middle of it, or the source removed)
// before it writes the entry's files: the pre-update backup is put back,
// so the app never runs a Compose document of a version it does not
// record.
func (c *Controller) updateMoved(ctx context.Context, a fsm.App, e catalog.Entry, st stage) (bool, error) {
	to := a.OpArgs["version"]
	if a.Op != fsm.OpUpdate || to == "" || (st.name != stCompose.name && st.name != stEnvUpgrade.name) ||
		strings.HasPrefix(a.Step, rollbackPrefix) || e.Version == to {
		return false, nil
	}
	now := "is no longer in the catalog"
	if e.ID != "" {
		now = "now offers " + e.Version
	}
	reason := fmt.Sprintf("update failed: the catalog entry %s %s, not %s; update again", a.CatalogID, now, to)
	return true, c.step(ctx, a, fsm.AppStepCmd{Step: rollback[0].name, Attempt: 1, Error: reason,
		Log: []string{reason, "rollback: restoring the pre-update backup"}})
}

// deployMoved says why a deploy must stop when its catalog entry no longer
// offers the version the app records (a reload since the deploy was asked
// for): its create, compose and env stages would make the container of
// one version while the registry records another. The deploy fails and
// is undone; deploying again takes the version offered then.
func deployMoved(a fsm.App, e catalog.Entry, haveEntry bool, st stage) string {
	if a.Op != fsm.OpDeploy || !haveEntry || a.CatalogVersion == "" || e.Version == a.CatalogVersion ||
		(st.name != stCreate.name && st.name != stCompose.name && st.name != stEnv.name) {
		return ""
	}
	return fmt.Sprintf("the catalog entry %s now offers version %s, not the %s this deploy was asked for (the catalog was reloaded meanwhile); deploy again", a.CatalogID, e.Version, a.CatalogVersion)
}

// entryTag is the Proxmox tag naming a container's catalog entry:
// "app-" and the entry's ID, whose "/" (an imported entry's source/id)
// and any other character a tag cannot hold become "-".
func entryTag(id string) string {
	b := []byte("app-")
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '+', c == '.', c == '-':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	return string(b)
}
