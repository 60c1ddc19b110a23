package fsm

import (
	"strconv"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
)

// A move restores one of an app's backups onto another node and makes
// the new container the app's, keeping its hostname (docs/operations.md,
// "Moving an app"). While it runs the app holds two reservations: its own
// (the container that serves it) and a standby one (the other container:
// the new one until the switch, the old one after it), with its own VMID,
// public ports on its node and, with static addressing, address. The
// standby reservation does not hold the hostname: the app's own does, and
// the switch hands it over with the rest. OpArgs describe the other
// container; the switch swaps them with the app's record, so the stages
// after it act on the old container the same way as the stages before it
// act on the new one.
const (
	OpMove    = "move"
	AppMoving = "moving"
)

// Arguments of a move (App.OpArgs).
const (
	// ArgMoveReservation is the standby reservation.
	ArgMoveReservation = "move_reservation"
	// ArgMoveNode and ArgMoveVMID are the other container's node and VMID.
	ArgMoveNode = "move_node"
	ArgMoveVMID = "move_vmid"
	// ArgMoveContainerIP is the other container's address as its network
	// stage observed it (with DHCP), like App.ContainerIP.
	ArgMoveContainerIP = "move_container_ip"
	// ArgMoveFrom is the node the move started from (for the log).
	ArgMoveFrom = "move_from"
	// ArgMoveSwitched is set once the app's record names the new container.
	ArgMoveSwitched = "move_switched"
)

// ArgBackupNode (restore, delete_backup) is the node the backup was made
// on: after a move it may not be the app's, and an archive on a storage
// that is not shared is removed there (see apps.stDeleteBackup).
const ArgBackupNode = "backup_node"

// MoveAppCmd starts a move of app ID onto Node from backup BackupID: the
// standby reservation (a new VMID, ports on Node, an address when Reserve
// asks for one) is made and the operation begins, in one step, or nothing
// changes. Owner, when set, must own the app.
type MoveAppCmd struct {
	ID       string     `json:"id"`
	Owner    string     `json:"owner,omitempty"`
	BackupID string     `json:"backup_id"`
	Node     string     `json:"node"`
	Reserve  ReserveCmd `json:"reserve"`
	At       time.Time  `json:"at"`
}

// MoveStepCmd moves a move forward like AppStepCmd, and may also switch
// the app to its new container (Switch) or free the standby reservation
// (Release: the new container's after a failure, the old one's after the
// switch, once its container is gone).
type MoveStepCmd struct {
	Step    AppStepCmd `json:"step"`
	Switch  bool       `json:"switch,omitempty"`
	Release bool       `json:"release,omitempty"`
}

// moveFrom are the statuses a move may start from: an app in error may be
// one whose node failed, which is when a move is wanted most.
var moveFrom = []string{AppRunning, AppStopped, AppError}

func (s *State) moveApp(index uint64, c MoveAppCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok || (c.Owner != "" && a.Owner != c.Owner) {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	if a.Op != "" {
		if a.Op == OpDelete || a.Op == OpCloneSource {
			return nil, problem.E(problem.Conflict, "app %s is busy: %s in progress", c.ID, a.Op)
		}
		return nil, problem.E(problem.Conflict, "app %s is busy: %s in progress (wait for it, or end it with the action cancel)", c.ID, a.Op)
	}
	if a.ReservationID == "" {
		return nil, problem.E(problem.Conflict, "app %s has no container (its deploy failed); delete it", c.ID)
	}
	if a.Adopted {
		return nil, problem.E(problem.Conflict, "app %s is adopted: it has no Compose stack of Proximity's to bring up on another node", c.ID)
	}
	allowed := false
	for _, f := range moveFrom {
		allowed = allowed || a.Status == f
	}
	if !allowed {
		return nil, problem.E(problem.Conflict, "app %s is %s; cannot move it", c.ID, a.Status)
	}
	if c.Node == a.Node {
		return nil, problem.E(problem.Invalid, "node: the app is on %s already", c.Node)
	}
	if n, ok := s.Nodes[c.Node]; !ok {
		return nil, problem.E(problem.NotFound, "node: %q is not enrolled", c.Node)
	} else if n.Status != NodeReady {
		return nil, problem.E(problem.Conflict, "node %s is %s, not ready", c.Node, n.Status)
	}
	b, ok := s.Backups[c.BackupID]
	if !ok || b.AppID != a.ID {
		return nil, problem.E(problem.NotFound, "backup %s does not exist", c.BackupID)
	}
	if b.Status != BackupReady {
		return nil, problem.E(problem.Conflict, "backup %s is %s, not ready", b.ID, b.Status)
	}
	rc := c.Reserve
	rc.Hostname, rc.Node, rc.PublicPorts, rc.FixedVMID, rc.standby = a.Hostname, c.Node, len(a.PublicPorts), 0, true
	r, err := s.reserve(index, &rc)
	if err != nil {
		return nil, err
	}
	a.PrevStatus = a.Status
	a.Op, a.Step, a.Attempt, a.TaskID, a.OpIndex, a.Status = OpMove, "", 1, "", index, AppMoving
	a.OpArgs = map[string]string{
		"restore_backup": b.ID, "volid": b.Volid,
		ArgMoveReservation: r.ID, ArgMoveNode: r.Node, ArgMoveVMID: strconv.Itoa(r.VMID), ArgMoveFrom: a.Node,
	}
	a.log(c.At, "move to "+c.Node+" from backup "+b.ID+" requested: CT "+strconv.Itoa(r.VMID)+" on "+c.Node+
		" (CT "+strconv.Itoa(a.VMID)+" on "+a.Node+" serves the app until the new one passes its health check)")
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

func (s *State) moveStep(c MoveStepCmd) (*App, error) {
	st := c.Step
	a, ok := s.Apps[st.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "app %s does not exist", st.ID)
	}
	if a.Op != OpMove || a.Op != st.ExpectOp || a.Step != st.ExpectStep || a.TaskID != st.ExpectTask {
		return nil, problem.E(problem.Conflict, "app %s moved on (now %s/%s)", st.ID, a.Op, a.Step)
	}
	if st.Release && !st.Done {
		return nil, problem.E(problem.Invalid, "step: a release of the standby reservation ends the move")
	}
	if c.Switch {
		if a.OpArgs[ArgMoveSwitched] != "" {
			return nil, problem.E(problem.Conflict, "app %s: its move switched already", st.ID)
		}
		if err := s.switchMove(a); err != nil {
			return nil, err
		}
	}
	if c.Release {
		if id := a.OpArgs[ArgMoveReservation]; id != "" {
			if r, ok := s.Reservations[id]; ok && r.Standby {
				if err := s.release(id); err != nil {
					return nil, err
				}
			}
			delete(a.OpArgs, ArgMoveReservation)
		}
	}
	st.Release = false // the app's own reservation stays
	return s.appStep(st)
}

// switchMove makes the new container the app's: its reservation takes the
// hostname, and the app's record and the move's arguments trade places.
func (s *State) switchMove(a *App) error {
	nr, ok := s.Reservations[a.OpArgs[ArgMoveReservation]]
	if !ok {
		return problem.E(problem.Conflict, "app %s: the new container's reservation is gone", a.ID)
	}
	old, ok := s.Reservations[a.ReservationID]
	if !ok {
		return problem.E(problem.Conflict, "app %s: its reservation is gone", a.ID)
	}
	old.Standby, nr.Standby = true, false
	s.byHostname[nr.Hostname] = nr.ID
	ip := a.ContainerIP
	a.Node, a.VMID, a.ReservationID, a.IP = nr.Node, nr.VMID, nr.ID, nr.IP
	a.PublicPorts = append([]int(nil), nr.PublicPorts...)
	a.ContainerIP = a.OpArgs[ArgMoveContainerIP]
	a.OpArgs[ArgMoveReservation], a.OpArgs[ArgMoveNode], a.OpArgs[ArgMoveVMID] = old.ID, old.Node, strconv.Itoa(old.VMID)
	a.OpArgs[ArgMoveContainerIP], a.OpArgs[ArgMoveSwitched] = ip, "1"
	return nil
}

// movingTo is the other container of a move that is not yet switched and
// not being undone, with the address forwards go to ("" when unknown).
func (s *State) movingTo(a *App) (node, ip string, ports []int, ok bool) {
	if a.Op != OpMove || a.OpArgs[ArgMoveSwitched] != "" || Undoing(a.Step) {
		return "", "", nil, false
	}
	r, found := s.Reservations[a.OpArgs[ArgMoveReservation]]
	if !found {
		return "", "", nil, false
	}
	ip = r.IP
	if ip == "" {
		ip = a.OpArgs[ArgMoveContainerIP]
	}
	return r.Node, ip, r.PublicPorts, true
}
