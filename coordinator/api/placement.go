package api

import (
	"context"
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/placement"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

func (a *API) getPlacement(rq *request) (int, any, error) {
	var p fsm.PlacementSettings
	a.b.FSM().Read(func(s *fsm.State) { p = s.PlacementPolicy() })
	return http.StatusOK, p, nil
}

func (a *API) putPlacement(rq *request) (int, any, error) {
	return putSetting(a, rq, func(p *fsm.PlacementSettings) fsm.Command {
		return fsm.Command{Type: fsm.CmdSetPlacement, SetPlacement: p}
	})
}

func (a *API) patchPlacement(rq *request) (int, any, error) {
	return a.patchSetting(rq, a.getPlacement, a.putPlacement, nil, nil)
}

const mib = 1 << 20

// place decides the node of an app that holds res: the node named (which
// must fit) or, with none, the one the placement policy chooses among the
// ready nodes. It runs on the leader and holds the placement slot until
// the caller calls unlock, after its proposal is applied: so the next
// placement sees this app in the registry, and quick or concurrent
// deploys spread instead of all choosing the node that looked freest in
// the last report. Waiting for the slot ends with the request's
// deadline. On refusal nothing is held.
func (a *API) place(ctx context.Context, named string, res catalog.Resources) (unlock func(), node string, err error) {
	select {
	case a.placing <- struct{}{}:
	case <-ctx.Done():
		return nil, "", problem.E(problem.Unavailable, "deploys are busy being placed; retry shortly")
	}
	release := func() { <-a.placing }
	defer func() {
		if err != nil {
			release()
		}
	}()
	// Every app placed so far, by this leader or an earlier one, counts.
	if err := a.b.ReadIndex(ctx); err != nil {
		return nil, "", err
	}
	need := placement.Need{MemoryMB: int64(res.MemoryMB), DiskGB: int64(res.DiskGB), Cores: int64(res.Cores)}
	views, ready, pol := a.nodeViews()
	if named != "" {
		// A named node is checked when it has reported its capacity; the
		// FSM refuses one that is not enrolled.
		for _, v := range views {
			if v.Name == named {
				if err := pol.Fits(v, need); err != nil {
					return nil, "", err
				}
			}
		}
		return release, named, nil
	}
	if ready == 0 {
		return nil, "", problem.E(problem.Unavailable, "no ready node; add one with a join token")
	}
	if len(views) == 0 {
		// Just after the nodes joined (or this server became leader) no
		// ready node has reported yet, for a heartbeat or two: spread by
		// the number of apps, without a capacity check, rather than
		// refuse; the node's own checks still hold.
		if node = a.fewestApps(); node == "" {
			return nil, "", problem.E(problem.Unavailable, "no ready node; add one with a join token")
		}
		return release, node, nil
	}
	node, err = pol.Choose(views, need)
	if err != nil {
		return nil, "", err
	}
	return release, node, nil
}

// nodeViews gathers, for each ready node that has reported its capacity
// to this leader, what placement needs (see package placement), with the
// number of ready nodes and the policy in force.
func (a *API) nodeViews() ([]placement.Node, int, placement.Policy) {
	var nodes []fsm.NodeRecord
	var apps []fsm.App
	var storage string
	var set fsm.PlacementSettings
	a.b.FSM().Read(func(s *fsm.State) {
		nodes, storage, set = s.ListNodes(), s.ResourceDefaults().Storage, s.PlacementPolicy()
		for _, x := range s.Apps {
			if x.ReservationID != "" {
				apps = append(apps, *x)
			}
		}
	})
	pol := placement.Policy{Pack: set.Strategy == fsm.PlacePack, MemoryOvercommit: set.MemoryOvercommit, CPUOvercommit: set.CPUOvercommit}
	var out []placement.Node
	ready := 0
	for _, n := range nodes {
		if n.Status != fsm.NodeReady {
			continue
		}
		ready++
		if a.agents == nil {
			continue
		}
		li, ok := a.agents.NodeLive(n.Name)
		if !ok || li.MemTotal == 0 || !li.Inventoried {
			continue
		}
		v := placement.Node{Name: n.Name, MemTotalMB: int64(li.MemTotal / mib), CPUs: int64(li.CPUs),
			DiskFreeGB: int64(li.DiskFree >> 30)}
		for _, st := range li.Storages {
			if st.Name == storage {
				v.DiskFreeGB = int64(st.Available >> 30)
			}
		}
		listed := map[int]bool{}
		var limits uint64
		for _, g := range li.Guests {
			listed[int(g.Vmid)] = true
			limits += g.MaxMem
		}
		v.MemUsedMB = int64(max(li.MemTotal-min(li.MemFree, li.MemTotal), limits) / mib)
		for _, x := range apps {
			for _, pc := range containersOf(x) { // two while it is moved (move.go)
				if pc.node != n.Name {
					continue
				}
				v.Cores += int64(x.Resources.Cores)
				if !listed[pc.vmid] {
					v.Pending.MemoryMB += int64(x.Resources.MemoryMB)
					v.Pending.DiskGB += int64(x.Resources.DiskGB)
				}
			}
		}
		out = append(out, v)
	}
	return out, ready, pol
}

// fewestApps is the ready node that holds the fewest apps (ties: the name
// that sorts first).
func (a *API) fewestApps() string {
	best, bestN := "", 0
	a.b.FSM().Read(func(s *fsm.State) {
		count := map[string]int{}
		for _, x := range s.Apps {
			if x.ReservationID != "" {
				count[x.Node]++
			}
		}
		for _, n := range s.ListNodes() {
			if n.Status == fsm.NodeReady && (best == "" || count[n.Name] < bestN || (count[n.Name] == bestN && n.Name < best)) {
				best, bestN = n.Name, count[n.Name]
			}
		}
	})
	return best
}
