package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// An app's generated secrets on demand: GET /api/v1/apps/{id}/secrets.
// The values are made on the node at deploy time and live only in the
// app's .env in its container; this reads them from there through the
// agent (the live channel, outside Raft) and hands them to the caller.
// They are never stored, logged or kept by the coordinator. Every read is
// in the audit log (the route's audit action), without the values.

// appEnvPath is the app's .env file in its container (the deploy flow's,
// coordinator/apps).
const appEnvPath = "/opt/proximity/app/.env"

// auditSecretsRead is the audit action of a read of an app's secrets.
const auditSecretsRead = "app.secrets.read"

type secretJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// secretNames are the variables of a catalog entry that hold secrets:
// its settings of type secret (generated on the node unless the deployer
// gave a value) and its environment entries with generate.
func secretNames(e catalog.Entry) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, s := range e.Settings {
		if s.Secret() {
			add(s.Name)
		}
	}
	for _, v := range e.Environment {
		if v.Generate > 0 {
			add(v.Name)
		}
	}
	return out
}

func (a *API) appSecrets(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var names []string
	a.b.FSM().Read(func(s *fsm.State) {
		if e, ok := s.CatalogEntry(app.CatalogID); ok {
			names = secretNames(e)
		}
	})
	items := []secretJSON{}
	if len(names) == 0 {
		return http.StatusOK, map[string]any{"items": items}, nil
	}
	node, err := a.liveTarget(app, "its secrets")
	if err != nil {
		return 0, nil, err
	}
	chunks, err := a.live().Query(rq.ctx, node, &pb.LiveRequest{Kind: agentsvc.LiveReadEnv, Vmid: uint32(app.VMID),
		Env: &pb.EnvArgs{Path: appEnvPath, Names: names}})
	if err != nil {
		return 0, nil, err
	}
	got := map[string]string{}
	for c := range chunks {
		if c.Err != nil {
			return 0, nil, c.Err
		}
		for _, v := range c.Values {
			got[v.Name] = v.Value
		}
	}
	for _, n := range names {
		if v, ok := got[n]; ok {
			items = append(items, secretJSON{Name: n, Value: v})
		}
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}
