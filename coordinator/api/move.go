package api

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// restoreOrMove restores backup {bid} of app {id}: in place, or, with a
// body {"node"} naming another node, onto that node (a move: see
// fsm.OpMove and docs/operations.md, "Moving an app").
func (a *API) restoreOrMove(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Node string `json:"node"`
	}
	if len(bytes.TrimSpace(rq.body)) > 0 {
		if err := rq.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	if in.Node == "" || in.Node == app.Node {
		// A backup made before the app was moved may be on a storage of
		// its old node only: refused before the app is stopped for it.
		var b fsm.Backup
		var ok bool
		a.b.FSM().Read(func(s *fsm.State) { b, ok = s.Backup(rq.r.PathValue("bid")) })
		if ok && b.AppID == app.ID && b.Node != "" && b.Node != app.Node {
			if err := a.backupReadable(b, app.Node); err != nil {
				return 0, nil, err
			}
		}
		return a.backupOp(rq, fsm.OpRestore)
	}
	if err := validate.NodeName("node", in.Node); err != nil {
		return 0, nil, err
	}
	return a.moveApp(rq, app, in.Node)
}

// moveApp starts a move of app onto node: the backup must be readable
// there (its storage shared, or the backup made on that node), and the
// app must fit the node; then one command reserves the new VMID and ports
// and starts the operation.
func (a *API) moveApp(rq *request, app fsm.App, node string) (int, any, error) {
	bid := rq.r.PathValue("bid")
	var b fsm.Backup
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { b, ok = s.Backup(bid) })
	if !ok || b.AppID != app.ID {
		return 0, nil, problem.E(problem.NotFound, "backup %s does not exist", bid)
	}
	if err := a.backupReadable(b, node); err != nil {
		return 0, nil, err
	}
	unlock, _, err := a.place(rq.ctx, node, app.Resources)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdMoveApp, RequestID: rq.key, MoveApp: &fsm.MoveAppCmd{
		ID: app.ID, Owner: owner(rq), BackupID: b.ID, Node: node, At: a.now(),
		Reserve: fsm.ReserveCmd{ID: NewID("res_"), IP: a.staticIPs(), Owner: fsm.AppOwnerPrefix + app.ID, CreatedAt: a.now()},
	}})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

// backupReadable answers nil when node can read backup b: b was made on
// node, or node reports b's storage as shared (a storage of that name
// reached from every node, as in one Proxmox cluster, where storages are
// configured cluster-wide). Otherwise a 409 names the storage.
func (a *API) backupReadable(b fsm.Backup, node string) error {
	storage, _, _ := strings.Cut(b.Volid, ":")
	if b.Node == node {
		return nil
	}
	if a.agents != nil {
		if li, ok := a.agents.NodeLive(node); ok && li.Storages != nil {
			for _, st := range li.Storages {
				if st.Name == storage && st.Shared {
					return nil
				}
			}
			return problem.E(problem.Conflict, "backup %s is on storage %q of node %s, which node %s cannot read: restore onto another node needs a backup on a shared storage (content backup, shared) that both nodes have", b.ID, storage, b.Node, node)
		}
	}
	return problem.E(problem.Conflict, "node %s has not reported its storages yet, so whether it can read storage %q is not known; retry shortly", node, storage)
}

// placedCT is one container an app holds on a node: its own and, while
// it is being moved, the other one (fsm.ArgMoveNode).
type placedCT struct {
	node string
	vmid int
}

func containersOf(x fsm.App) []placedCT {
	out := []placedCT{{x.Node, x.VMID}}
	if x.Op == fsm.OpMove && x.OpArgs[fsm.ArgMoveReservation] != "" {
		vmid, _ := strconv.Atoi(x.OpArgs[fsm.ArgMoveVMID])
		out = append(out, placedCT{x.OpArgs[fsm.ArgMoveNode], vmid})
	}
	return out
}
