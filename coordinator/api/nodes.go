package api

import (
	"net/http"
	"time"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/usage"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Agents is what the API reads from the agent service: the CA pin for join
// tokens and the leader's in-memory view of node heartbeats.
type Agents interface {
	CAPin() string
	NodeLive(node string) (agentsvc.Live, bool)
	// History is a node's container's metrics since a time, oldest first
	// (the leader's memory of this term; package usage).
	History(node string, vmid int, since time.Time) []usage.Sample
}

type nodeJSON struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Address is where people reach the node's apps, as its agent reports
	// it ("" until it has).
	Address       string        `json:"address"`
	LastHeartbeat *time.Time    `json:"last_heartbeat"`
	AgentVersion  string        `json:"agent_version,omitempty"`
	PVEVersion    string        `json:"pve_version,omitempty"`
	Capacity      capacity      `json:"capacity"`
	MemFree       uint64        `json:"mem_free"`
	DiskFree      uint64        `json:"disk_free"`
	Containers    int           `json:"containers"`
	Storages      []storageJSON `json:"storages"`
	JoinedAt      time.Time     `json:"joined_at"`
	StatusSince   time.Time     `json:"status_since"`
}

type capacity struct {
	CPUs      uint32 `json:"cpus"`
	MemTotal  uint64 `json:"mem_total"`
	DiskTotal uint64 `json:"disk_total"`
}

// listNodes runs on the leader, which holds the heartbeats.
func (a *API) listNodes(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	var nodes []fsm.NodeRecord
	a.b.FSM().Read(func(s *fsm.State) { nodes = s.ListNodes() })
	out := page[nodeJSON]{Items: []nodeJSON{}, Total: len(nodes), Page: pg, PerPage: per}
	for _, n := range validate.PageOf(nodes, pg, per) {
		out.Items = append(out.Items, a.nodeOut(n))
	}
	return http.StatusOK, out, nil
}

// nodeOut is a node as the API shows it: its record, and what its agent
// last reported to this server (the leader holds the heartbeats).
func (a *API) nodeOut(n fsm.NodeRecord) nodeJSON {
	j := nodeJSON{Name: n.Name, Status: n.Status, Address: n.Address, AgentVersion: n.Version, JoinedAt: n.JoinedAt, StatusSince: n.StatusAt, Storages: []storageJSON{}}
	if a.agents != nil {
		if li, ok := a.agents.NodeLive(n.Name); ok {
			hb := li.LastHeartbeat.UTC()
			j.LastHeartbeat = &hb
			if li.AgentVersion != "" {
				j.AgentVersion = li.AgentVersion
			}
			j.PVEVersion = li.PVEVersion
			j.Capacity = capacity{CPUs: li.CPUs, MemTotal: li.MemTotal, DiskTotal: li.DiskTotal}
			j.MemFree, j.DiskFree, j.Containers = li.MemFree, li.DiskFree, len(li.Guests)
			j.Storages = storagesJSON(li.Storages)
		}
	}
	return j
}

// removeNode forgets a node that holds nothing; its agent's certificate
// is refused from then on.
func (a *API) removeNode(rq *request) (int, any, error) {
	name := rq.r.PathValue("name")
	if err := validate.NodeName("name", name); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdRemoveNode, RequestID: rq.key, RemoveNode: &fsm.RemoveNodeCmd{Node: name}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Join token lifetimes.
const (
	defaultJoinTTL = time.Hour
	maxJoinTTL     = 7 * 24 * time.Hour
)

// createJoinToken makes a single-use join token; the secret is shown once.
func (a *API) createJoinToken(rq *request) (int, any, error) {
	var in struct {
		TTLSeconds *int   `json:"ttl_seconds"`
		Node       string `json:"node"`
	}
	if len(rq.body) > 0 {
		if err := rq.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	ttl := defaultJoinTTL
	if in.TTLSeconds != nil {
		ttl = time.Duration(*in.TTLSeconds) * time.Second
		if ttl < time.Minute || ttl > maxJoinTTL {
			return 0, nil, problem.E(problem.Invalid, "ttl_seconds: %d outside 60-%d", *in.TTLSeconds, int(maxJoinTTL/time.Second))
		}
	}
	if in.Node != "" {
		if err := validate.NodeName("node", in.Node); err != nil {
			return 0, nil, err
		}
	}
	pin := ""
	if a.agents != nil {
		pin = a.agents.CAPin()
	}
	if pin == "" {
		return 0, nil, problem.E(problem.Unavailable, "the cluster CA is not created yet; retry shortly")
	}
	tok := pki.NewToken(pin)
	now := a.now()
	jt := fsm.JoinToken{ID: NewID("jtk_"), Hash: tok.Hash(), Node: in.Node, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdJoinToken, RequestID: rq.key, JoinToken: &jt}); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{
		"id": jt.ID, "token": tok.String(), "expires_at": jt.ExpiresAt.UTC(), "node": in.Node, "ca_pin": pin,
	}, nil
}
