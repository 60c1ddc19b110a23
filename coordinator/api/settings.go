package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
)

type networkJSON struct {
	Subnet  string   `json:"subnet"`
	Gateway string   `json:"gateway"`
	DNS     []string `json:"dns"`
	Bridge  string   `json:"bridge"`
}

func (a *API) getNetwork(rq *request) (int, any, error) {
	var n fsm.NetworkSettings
	a.b.FSM().Read(func(s *fsm.State) { n = s.Network })
	if n.DNS == nil {
		n.DNS = []string{}
	}
	return http.StatusOK, networkJSON(n), nil
}

func (a *API) putNetwork(rq *request) (int, any, error) {
	var in networkJSON
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	n := fsm.NetworkSettings(in)
	if err := n.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetNetwork, RequestID: rq.key, SetNetwork: &n}); err != nil {
		return 0, nil, err
	}
	if n.DNS == nil {
		n.DNS = []string{}
	}
	return http.StatusOK, networkJSON(n), nil
}

func (a *API) getPools(rq *request) (int, any, error) {
	var p fsm.PoolSettings
	a.b.FSM().Read(func(s *fsm.State) { p = s.Pools })
	return http.StatusOK, p, nil
}

// putSetting decodes, validates and stores one kind of settings.
func putSetting[T interface{ Validate() error }](a *API, rq *request, command func(*T) fsm.Command) (int, any, error) {
	var v T
	if err := rq.decode(&v); err != nil {
		return 0, nil, err
	}
	if err := v.Validate(); err != nil {
		return 0, nil, err
	}
	cmd := command(&v)
	cmd.RequestID = rq.key
	if _, err := a.propose(rq, cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

func (a *API) putPools(rq *request) (int, any, error) {
	return putSetting(a, rq, func(p *fsm.PoolSettings) fsm.Command { return fsm.Command{Type: fsm.CmdSetPools, SetPools: p} })
}

func (a *API) getResources(rq *request) (int, any, error) {
	var r fsm.ResourceSettings
	a.b.FSM().Read(func(s *fsm.State) { r = s.ResourceDefaults() })
	return http.StatusOK, r, nil
}

// putResources replaces the resource defaults; the storages must be ones
// the nodes report (storages.go): the container storage with content
// rootdir, the backup storage with content backup.
func (a *API) putResources(rq *request) (int, any, error) {
	var r fsm.ResourceSettings
	if err := rq.decode(&r); err != nil {
		return 0, nil, err
	}
	if r.BackupStorage == "" {
		r.BackupStorage = fsm.DefaultBackupStorage
	}
	if err := r.Validate(); err != nil {
		return 0, nil, err
	}
	if err := a.checkStorage("storage", r.Storage, "rootdir"); err != nil {
		return 0, nil, err
	}
	if err := a.checkStorage("backup_storage", r.BackupStorage, "backup"); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetResources, RequestID: rq.key, SetResources: &r}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r, nil
}

// patchSetting applies a JSON merge patch (RFC 7386) to one kind of
// settings: the body is an object whose members replace the fields they
// name; a field left out keeps its value; null sets a field to what PUT
// takes for a field left out (its empty value, which some settings then
// refuse). Lists are replaced whole. The current settings are read as get
// answers them, patched, and stored through put, so a PATCH is checked
// exactly as the PUT of its result. outputOnly names fields that get
// answers but put does not take; inputOnly names fields put takes that get
// never shows (a secret). Patches are serialized on the leader, so two
// patches of different fields both land.
func (a *API) patchSetting(rq *request, get, put handlerFunc, outputOnly, inputOnly []string) (int, any, error) {
	var patch map[string]json.RawMessage
	if err := rq.decode(&patch); err != nil {
		return 0, nil, err
	}
	a.settingsMu.Lock()
	defer a.settingsMu.Unlock()
	// The patch applies to the settings as last written, also just after
	// this server became leader.
	if err := a.b.ReadIndex(rq.ctx); err != nil {
		return 0, nil, err
	}
	_, cur, err := get(rq)
	if err != nil {
		return 0, nil, err
	}
	raw, err := json.Marshal(cur)
	if err != nil {
		return 0, nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, nil, err
	}
	for _, k := range outputOnly {
		delete(doc, k)
	}
	allowed := map[string]bool{}
	for k := range doc {
		allowed[k] = true
	}
	for _, k := range inputOnly {
		allowed[k] = true
	}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			return 0, nil, problem.E(problem.Invalid, "body: unknown field %q", k)
		}
		if v := patch[k]; string(bytes.TrimSpace(v)) == "null" {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	merged, err := json.Marshal(doc)
	if err != nil {
		return 0, nil, err
	}
	rq.body = merged
	return put(rq)
}

func (a *API) patchNetwork(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getNetwork, a.putNetwork, nil, nil)
}

func (a *API) patchResources(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getResources, a.putResources, nil, nil)
}

func (a *API) patchPools(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getPools, a.putPools, nil, nil)
}

func (a *API) patchQuotas(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getQuotas, a.putQuotas, nil, nil)
}

func (a *API) patchAuditPolicy(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getAuditPolicy, a.putAuditPolicy, nil, nil)
}

// patchOIDC: client_secret_set is shown, never taken; client_secret is
// taken, never shown (PUT keeps the current one for the same issuer and
// client when it is left out).
func (a *API) patchOIDC(rq *request) (int, any, error) {
	// An empty (or null) issuer turns single sign-on off whatever the
	// other fields hold, as PUT {"issuer":""} does.
	var p struct {
		Issuer *json.RawMessage `json:"issuer"`
	}
	if json.Unmarshal(rq.body, &p) == nil && p.Issuer != nil {
		if v := string(bytes.TrimSpace(*p.Issuer)); v == `""` || v == "null" {
			rq.body = []byte(`{"issuer":""}`)
			return a.putOIDC(rq)
		}
	}
	return a.patchSetting(rq, a.getOIDC, a.putOIDC, []string{"client_secret_set"}, []string{"client_secret"})
}
