// Adoption of containers made outside Proximity, and clones (with the
// pending cleanups of their temporary snapshots).

package fsm

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
)

// AdoptAppCmd takes over an existing container: a reservation of its
// VMID, a public port and a hostname, and an app record that is verified
// on the node before it counts.
type AdoptAppCmd struct {
	App     App        `json:"app"`
	Reserve ReserveCmd `json:"reserve"`
}

// adoptApp is not held to the owner's quota: adoption is an admin's act
// on a container that exists already, and refusing it would free nothing.
// The adopted app counts towards the owner's usage from then on.
func (s *State) adoptApp(index uint64, c AdoptAppCmd) (*App, error) {
	a := c.App
	if a.ID == "" {
		return nil, problem.E(problem.Invalid, "app: id required")
	}
	if u, ok := s.Users[a.Owner]; !ok || u == nil {
		return nil, problem.E(problem.Invalid, "owner: %q is not a user", a.Owner)
	}
	if _, ok := s.Nodes[c.Reserve.Node]; !ok {
		return nil, problem.E(problem.NotFound, "node: %q is not enrolled", c.Reserve.Node)
	}
	for _, x := range s.Apps {
		if x.VMID == c.Reserve.FixedVMID && x.Node == c.Reserve.Node {
			return nil, problem.E(problem.Conflict, "VMID %d is app %s already", x.VMID, x.ID)
		}
	}
	r, err := s.reserve(index, &c.Reserve)
	if err != nil {
		return nil, err
	}
	a.Hostname, a.Node, a.VMID, a.ReservationID, a.PublicPorts, a.IP = r.Hostname, r.Node, r.VMID, r.ID, r.PublicPorts, r.IP
	a.Adopted, a.Status, a.Op, a.OpIndex, a.Step, a.Attempt = true, AppDeploying, OpAdopt, index, "", 1
	a.log(a.CreatedAt, fmt.Sprintf("adoption of CT %d on %s requested", r.VMID, r.Node))
	a.UpdatedAt = a.CreatedAt
	cp := a
	s.Apps[a.ID] = &cp
	out := cp
	return &out, nil
}

// Cleanup is a temporary snapshot whose removal failed; the controller
// retries it until it succeeds.
type Cleanup struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	VMID      int       `json:"vmid"`
	Snapshot  string    `json:"snapshot"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// CloneAppCmd makes a new app from an existing one's container: the
// target's reservation and record are made, and the source marked busy,
// in one step.
type CloneAppCmd struct {
	SourceID string     `json:"source_id"`
	Owner    string     `json:"owner,omitempty"` // when set, must own the source
	App      App        `json:"app"`
	Reserve  ReserveCmd `json:"reserve"`
}

// CleanupDoneCmd forgets a cleanup that succeeded.
type CleanupDoneCmd struct {
	ID string `json:"id"`
}

func (s *State) cloneApp(index uint64, c CloneAppCmd) (*App, error) {
	src, ok := s.Apps[c.SourceID]
	if !ok || (c.Owner != "" && src.Owner != c.Owner) {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.SourceID)
	}
	if src.Op != "" {
		return nil, problem.E(problem.Conflict, "app %s is busy: %s in progress", src.ID, src.Op)
	}
	if src.Adopted {
		return nil, problem.E(problem.Conflict, "app %s is adopted and cannot be cloned", src.ID)
	}
	if src.ReservationID == "" || (src.Status != AppRunning && src.Status != AppStopped) {
		return nil, problem.E(problem.Conflict, "app %s is %s; only a running or stopped app can be cloned", src.ID, src.Status)
	}
	a := c.App
	if a.ID == "" || a.Owner == "" {
		return nil, problem.E(problem.Invalid, "app: id and owner required")
	}
	if _, ok := s.Apps[a.ID]; ok {
		return nil, problem.E(problem.Conflict, "app %s exists already", a.ID)
	}
	if err := s.checkQuota(a.Owner, src.Resources); err != nil {
		return nil, err
	}
	c.Reserve.Node, c.Reserve.PublicPorts = src.Node, len(src.PublicPorts)
	r, err := s.reserve(index, &c.Reserve)
	if err != nil {
		return nil, err
	}
	a.CatalogID, a.CatalogVersion, a.Resources, a.Environment = src.CatalogID, src.CatalogVersion, src.Resources, src.Environment
	// The clone's .env is the source's, copied with its container; sealed
	// values are bound to the source and stay with it.
	a.Settings, a.SecretSettings = src.Settings, src.SecretSettings
	a.Hostname, a.Node, a.VMID, a.ReservationID, a.PublicPorts, a.IP = r.Hostname, r.Node, r.VMID, r.ID, r.PublicPorts, r.IP
	a.Status, a.Op, a.OpIndex, a.Step, a.Attempt = AppCloning, OpClone, index, "", 1
	a.OpArgs = map[string]string{"source": src.ID, "source_vmid": strconv.Itoa(src.VMID), "snapshot": fmt.Sprintf("proximity-clone-%d", index)}
	a.log(a.CreatedAt, "clone of "+src.ID+" ("+src.Hostname+") requested")
	a.UpdatedAt = a.CreatedAt
	s.Apps[a.ID] = &a
	src.Op = OpCloneSource
	src.log(a.CreatedAt, "cloning to "+a.ID)
	out := a
	return &out, nil
}

// ListCleanups lists the pending cleanups by ID.
func (s *State) ListCleanups() []Cleanup {
	var out []Cleanup
	for _, c := range s.Cleanups {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
