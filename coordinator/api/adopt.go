package api

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

type unmanaged struct {
	Node   string `json:"node"`
	VMID   int    `json:"vmid"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Tags   string `json:"tags,omitempty"`
}

// discover lists, per ready node, the containers its agent last reported
// that no app manages.
func (a *API) discover(rq *request) (int, any, error) {
	var nodes []fsm.NodeRecord
	managed := map[string]bool{}
	a.b.FSM().Read(func(s *fsm.State) {
		nodes = s.ListNodes()
		for _, x := range s.Apps {
			managed[x.Node+"/"+strconv.Itoa(x.VMID)] = true
		}
	})
	out := []unmanaged{}
	for _, n := range nodes {
		if a.agents == nil {
			break
		}
		li, ok := a.agents.NodeLive(n.Name)
		if !ok {
			continue
		}
		for _, g := range li.Guests {
			if !managed[n.Name+"/"+strconv.Itoa(int(g.Vmid))] {
				out = append(out, unmanaged{Node: n.Name, VMID: int(g.Vmid), Name: g.Name, Status: g.Status, Tags: g.Tags})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Node < out[j].Node || (out[i].Node == out[j].Node && out[i].VMID < out[j].VMID)
	})
	return http.StatusOK, map[string]any{"items": out, "total": len(out)}, nil
}

// adopt takes over an existing container for a user: its VMID, a public
// port forwarded to the validated internal port, and a hostname.
func (a *API) adopt(rq *request) (int, any, error) {
	var in struct {
		Node     string `json:"node"`
		VMID     int    `json:"vmid"`
		Owner    string `json:"owner"`
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := validate.NodeName("node", in.Node); err != nil {
		return 0, nil, err
	}
	if in.VMID < 100 || in.VMID > 999_999_999 {
		return 0, nil, problem.E(problem.Invalid, "vmid: %d is not a Proxmox VMID", in.VMID)
	}
	if err := validate.Port("port", in.Port); err != nil {
		return 0, nil, err
	}
	host, err := validate.Hostname("hostname", in.Hostname)
	if err != nil {
		return 0, nil, err
	}
	if err := a.adoptable(in.Node, in.VMID); err != nil {
		return 0, nil, err
	}
	now := a.now()
	id := NewID("app_")
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdAdoptApp, RequestID: rq.key, AdoptApp: &fsm.AdoptAppCmd{
		App:     fsm.App{ID: id, Owner: in.Owner, InternalPort: in.Port, CreatedAt: now},
		Reserve: fsm.ReserveCmd{ID: NewID("res_"), Hostname: host, Node: in.Node, PublicPorts: 1, Owner: fsm.AppOwnerPrefix + id, CreatedAt: now, FixedVMID: in.VMID},
	}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

// adoptable checks, before anything is reserved, that vmid is a container
// on node by the node's last inventory: a VMID that is a VM (or another
// node's guest) is 409, one that nothing uses is 404, and a node whose
// agent has not reported its inventory to this leader yet is 503 (retry).
// The controller still verifies the container on the node before the app
// counts, since it may go away between the report and the adoption.
func (a *API) adoptable(node string, vmid int) error {
	var enrolled bool
	var nodes []fsm.NodeRecord
	a.b.FSM().Read(func(s *fsm.State) {
		_, enrolled = s.Node(node)
		nodes = s.ListNodes()
	})
	if !enrolled {
		return problem.E(problem.NotFound, "node: %q is not enrolled", node)
	}
	var li agentsvc.Live
	var ok bool
	if a.agents != nil {
		li, ok = a.agents.NodeLive(node)
	}
	if !ok || !li.Inventoried {
		return problem.E(problem.Unavailable, "vmid: cannot check %d yet: node %s has not reported its containers; retry shortly", vmid, node)
	}
	for _, g := range li.Guests {
		if int(g.Vmid) == vmid {
			return nil
		}
	}
	if !li.VMIDs[vmid] {
		return problem.E(problem.NotFound, "vmid: no container %d on node %s (nothing in its Proxmox cluster uses VMID %d)", vmid, node, vmid)
	}
	for _, n := range nodes {
		if n.Name == node {
			continue
		}
		if other, ok := a.agents.NodeLive(n.Name); ok {
			for _, g := range other.Guests {
				if int(g.Vmid) == vmid {
					return problem.E(problem.Conflict, "vmid: %d is a container on node %s, not on node %s; adopt it there", vmid, n.Name, node)
				}
			}
		}
	}
	return problem.E(problem.Conflict, "vmid: %d on node %s is not a container (a VM, or a guest of another node); only containers can be adopted", vmid, node)
}
