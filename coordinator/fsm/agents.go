package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/internal/validate"
)

// CAState is the cluster CA. The first leader creates it; every server
// signs with it when it leads. Its private key is sealed (AES-256-GCM,
// internal/secrets) under a key derived from the cluster key, which is
// never in Raft; KeyDER, the key in the clear, is only ever read from a
// log written before keys were sealed, and the leader seals it at once.
type CAState struct {
	CertDER []byte          `json:"cert_der"`
	Key     *secrets.Sealed `json:"key,omitempty"`
	KeyDER  []byte          `json:"key_der,omitempty"`
}

// CAKeyPurpose binds the sealed CA key to its use (see internal/secrets).
const CAKeyPurpose = "cluster-ca-key"

// JoinToken is a single-use enrolment token, stored by hash.
type JoinToken struct {
	ID        string    `json:"id"`
	Hash      string    `json:"hash"`
	Node      string    `json:"node,omitempty"` // the node it is for; empty = any
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedBy    string    `json:"used_by,omitempty"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	// UsedKey is the pin of the key the token was used with: until the
	// token expires, the same node with the same key may join again,
	// so that a join whose answer was lost can be retried.
	UsedKey string `json:"used_key,omitempty"`
}

// Node statuses.
const (
	NodeReady = "ready"
	NodeDown  = "down"
)

// NodeRecord is an enrolled Proxmox node. Only enrolment and status
// changes are replicated; heartbeats and capacity live in the leader's
// memory.
type NodeRecord struct {
	Name     string    `json:"name"`
	Status   string    `json:"status"`
	JoinedAt time.Time `json:"joined_at"`
	StatusAt time.Time `json:"status_at"`
	Version  string    `json:"version,omitempty"`
	// Enrolment identifies the node's current enrolment (its last join
	// with a new token); its certificates name it, and certificates of an
	// earlier enrolment are refused.
	Enrolment string `json:"enrolment,omitempty"`
	// Address is where people reach the node's apps (an IP address or a
	// DNS name), as the node's agent reports it; "" until it has.
	Address string `json:"address,omitempty"`
}

// SetNodeAddressCmd records the address a node's agent reports. The
// leader proposes it only when it differs from the record's.
type SetNodeAddressCmd struct {
	Node    string `json:"node"`
	Address string `json:"address"`
}

// ValidNodeAddress checks an address a node is reached at: an IP address
// or a DNS name (RFC 1123), without a port.
func ValidNodeAddress(addr string) error { return validate.HostAddress("address", addr) }

// Task states.
const (
	TaskPending   = "pending"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
)

// Task is work for one node's agent. Fence is the log index at which this
// incarnation of the task was issued: the agent reports results with it,
// and results carrying an older fence are refused.
type Task struct {
	ID            string           `json:"id"`
	Node          string           `json:"node"`
	Kind          string           `json:"kind"`
	VMID          int              `json:"vmid,omitempty"`
	ReservationID string           `json:"reservation_id,omitempty"`
	Spec          json.RawMessage  `json:"spec,omitempty"`
	Fence         uint64           `json:"fence"`
	Attempt       int              `json:"attempt"`
	State         string           `json:"state"`
	Error         string           `json:"error,omitempty"`
	ErrorKind     taskspec.Failure `json:"error_kind,omitempty"`
	Output        json.RawMessage  `json:"output,omitempty"`
	CreatedAt     time.Time        `json:"created_at"`
	DoneAt        time.Time        `json:"done_at,omitzero"`
	DoneSeq       uint64           `json:"done_seq,omitempty"`
}

// MaxFinishedTasks bounds the finished tasks kept; the oldest go first.
const MaxFinishedTasks = 10_000

// RemoveNodeCmd forgets an enrolled node, which must hold nothing: no
// app, reservation, backup, pending task or cleanup. Its certificates are
// refused from then on; it may join again with a new token.
type RemoveNodeCmd struct {
	Node string `json:"node"`
}

// JoinNodeCmd consumes a join token for Node.
type JoinNodeCmd struct {
	TokenHash string    `json:"token_hash"`
	Node      string    `json:"node"`
	KeyPin    string    `json:"key_pin,omitempty"` // pki.KeyPin of the CSR
	Enrolment string    `json:"enrolment,omitempty"`
	Version   string    `json:"version"`
	At        time.Time `json:"at"`
}

// NodeStatusCmd changes a node's status.
type NodeStatusCmd struct {
	Node   string    `json:"node"`
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// CompleteTaskCmd records a task's result as reported by Node under Fence.
// A create that failed with "exists" on a reserved VMID is not a failure:
// someone took the VMID by hand, so it becomes foreign and the task is
// reissued with a fresh VMID, in the same step.
type CompleteTaskCmd struct {
	ID        string           `json:"id"`
	Node      string           `json:"node"`
	Fence     uint64           `json:"fence"`
	OK        bool             `json:"ok"`
	Error     string           `json:"error,omitempty"`
	ErrorKind taskspec.Failure `json:"error_kind,omitempty"`
	Output    json.RawMessage  `json:"output,omitempty"`
	At        time.Time        `json:"at"`
}

// ReissueTaskCmd hands a task out again under a new fence. With NewVMID
// the task's VMID is marked foreign and its reservation gets a fresh one
// in the same step.
type ReissueTaskCmd struct {
	ID      string `json:"id"`
	NewVMID bool   `json:"new_vmid"`
}

func (s *State) setCA(c CAState) error {
	if s.CA != nil {
		return problem.E(problem.Conflict, "the cluster CA exists already")
	}
	// A key in the clear is accepted only so that a log written before
	// keys were sealed replays as it applied then; this version never
	// proposes one, and its leader seals such a key at once.
	if len(c.CertDER) == 0 || (c.Key == nil) == (len(c.KeyDER) == 0) {
		return problem.E(problem.Invalid, "ca: certificate and sealed key required")
	}
	s.CA = &c
	return nil
}

// sealCA replaces the sealed CA key with the same key sealed anew (after
// a key rotation, or for a key stored in the clear by an older version).
// The certificate must be the CA's own: the CA itself never changes.
func (s *State) sealCA(c CAState) error {
	if s.CA == nil {
		return problem.E(problem.NotFound, "there is no cluster CA to seal")
	}
	if !bytes.Equal(c.CertDER, s.CA.CertDER) || c.Key == nil || len(c.KeyDER) != 0 {
		return problem.E(problem.Invalid, "ca: the same certificate and a sealed key required")
	}
	s.CA = &CAState{CertDER: s.CA.CertDER, Key: c.Key}
	return nil
}

func (s *State) createJoinToken(t JoinToken) error {
	if t.ID == "" || len(t.Hash) != 64 || t.ExpiresAt.IsZero() {
		return problem.E(problem.Invalid, "join token: id, hash and expiry required")
	}
	if _, ok := s.JoinTokens[t.Hash]; ok {
		return problem.E(problem.Conflict, "join token exists already")
	}
	if t.Node != "" {
		if err := validate.NodeName("node", t.Node); err != nil {
			return err
		}
	}
	cp := t
	s.JoinTokens[t.Hash] = &cp
	return nil
}

// CheckJoin answers what joinNode would answer for c, without changing
// anything: the leader runs it on its own state before it proposes a join,
// so a join that would be refused writes nothing to the log.
//
// Unknown, used and expired tokens, and a token made for another node, are
// refused with the same answer, so a caller learns nothing from guessing.
// A token used by this node with this key is not "used": that is the same
// join, retried because its answer was lost. A token that names no node
// enrols only a node that is not enrolled yet: enrolling an existing node
// again (which revokes its certificates) needs a token made for it.
func (s *State) CheckJoin(c JoinNodeCmd) error {
	_, _, err := s.checkJoin(c)
	return err
}

func (s *State) checkJoin(c JoinNodeCmd) (t *JoinToken, retry bool, err error) {
	if err := validate.NodeName("node", c.Node); err != nil {
		return nil, false, err
	}
	t, ok := s.JoinTokens[c.TokenHash]
	retry = ok && t.UsedBy == c.Node && c.KeyPin != "" && t.UsedKey == c.KeyPin
	if !ok || (t.UsedBy != "" && !retry) || !c.At.Before(t.ExpiresAt) || (t.Node != "" && t.Node != c.Node) {
		return nil, false, problem.E(problem.Unauthenticated, "join token is unknown, used or expired")
	}
	if _, enrolled := s.Nodes[c.Node]; enrolled && t.Node == "" && !retry {
		return nil, false, problem.E(problem.Permission, "node %s is enrolled already; enrolling it again needs a join token made for that node", c.Node)
	}
	return t, retry, nil
}

// joinNode consumes a token (see CheckJoin for which joins are refused).
func (s *State) joinNode(c JoinNodeCmd) (*NodeRecord, error) {
	t, retry, err := s.checkJoin(c)
	if err != nil {
		return nil, err
	}
	if !retry {
		t.UsedBy, t.UsedAt, t.UsedKey = c.Node, c.At.UTC(), c.KeyPin
	}
	n, ok := s.Nodes[c.Node]
	if !ok {
		n = &NodeRecord{Name: c.Node, JoinedAt: c.At.UTC()}
		s.Nodes[c.Node] = n
	}
	// A new enrolment revokes the earlier ones' certificates; a retried
	// join is the same enrolment.
	if !retry {
		n.Enrolment = c.Enrolment
	}
	n.Status, n.StatusAt, n.Version = NodeReady, c.At.UTC(), c.Version
	cp := *n
	return &cp, nil
}

func (s *State) removeNode(c RemoveNodeCmd) error {
	if _, ok := s.Nodes[c.Node]; !ok {
		return problem.E(problem.NotFound, "node %s is not enrolled", c.Node)
	}
	var held []string
	count := func(what string, n int) {
		if n > 0 {
			held = append(held, fmt.Sprintf("%d %s", n, what))
		}
	}
	node := c.Node
	count("app(s)", countWhere(s.Apps, func(a *App) bool { return a.Node == node }))
	count("reservation(s)", countWhere(s.Reservations, func(r *Reservation) bool { return r.Node == node }))
	count("backup(s)", countWhere(s.Backups, func(b *Backup) bool { return b.Node == node }))
	count("pending task(s)", countWhere(s.Tasks, func(t *Task) bool { return t.Node == node && t.State == TaskPending }))
	count("pending cleanup(s)", countWhere(s.Cleanups, func(cl *Cleanup) bool { return cl.Node == node }))
	if len(held) > 0 {
		return problem.E(problem.Conflict, "node %s still holds %s; delete them first", c.Node, strings.Join(held, ", "))
	}
	delete(s.Nodes, c.Node)
	delete(s.PortCursor, c.Node)
	return nil
}

func countWhere[T any](m map[string]*T, match func(*T) bool) int {
	n := 0
	for _, v := range m {
		if match(v) {
			n++
		}
	}
	return n
}

func (s *State) setNodeAddress(c SetNodeAddressCmd) (*NodeRecord, error) {
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, problem.E(problem.NotFound, "node %s is not enrolled", c.Node)
	}
	if err := ValidNodeAddress(c.Address); err != nil {
		return nil, err
	}
	n.Address = c.Address
	cp := *n
	return &cp, nil
}

func (s *State) setNodeStatus(c NodeStatusCmd) (*NodeRecord, error) {
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, problem.E(problem.NotFound, "node %s is not enrolled", c.Node)
	}
	if c.Status != NodeReady && c.Status != NodeDown {
		return nil, problem.E(problem.Invalid, "status: %q must be ready or down", c.Status)
	}
	if n.Status != c.Status {
		n.Status, n.StatusAt = c.Status, c.At.UTC()
	}
	cp := *n
	return &cp, nil
}

func (s *State) createTask(index uint64, t Task) (*Task, error) {
	if t.ID == "" || t.Kind == "" {
		return nil, problem.E(problem.Invalid, "task: id and kind required")
	}
	if _, ok := s.Nodes[t.Node]; !ok {
		return nil, problem.E(problem.NotFound, "node %s is not enrolled", t.Node)
	}
	if _, ok := s.Tasks[t.ID]; ok {
		return nil, problem.E(problem.Conflict, "task %s exists already", t.ID)
	}
	if t.ReservationID != "" {
		r, ok := s.Reservations[t.ReservationID]
		if !ok {
			return nil, problem.E(problem.NotFound, "reservation %s does not exist", t.ReservationID)
		}
		t.VMID = r.VMID
	}
	s.tasksAt = index
	t.Fence, t.Attempt, t.State = index, 1, TaskPending
	t.Error, t.ErrorKind, t.Output, t.DoneAt, t.DoneSeq = "", "", nil, time.Time{}, 0
	cp := t
	s.Tasks[t.ID] = &cp
	out := cp
	return &out, nil
}

func (s *State) completeTask(index uint64, c CompleteTaskCmd) (*Task, error) {
	t, ok := s.Tasks[c.ID]
	if !ok || t.Node != c.Node {
		// Another node's task is as invisible as a missing one.
		return nil, problem.E(problem.NotFound, "task %s is not assigned to node %s", c.ID, c.Node)
	}
	if c.Fence != t.Fence {
		return nil, problem.E(problem.Conflict, "stale fencing token %d for task %s (current %d)", c.Fence, c.ID, t.Fence)
	}
	if t.State != TaskPending {
		cp := *t // a repeated report of the same incarnation
		return &cp, nil
	}
	if !c.OK && c.ErrorKind == taskspec.FailExists && t.Kind == "create" && t.ReservationID != "" {
		if _, ok := s.Reservations[t.ReservationID]; ok {
			if re, err := s.reissueTask(index, ReissueTaskCmd{ID: t.ID, NewVMID: true}); err == nil {
				return re, nil
			} // no free VMID left: the create fails as reported
		}
	}
	s.tasksAt = index
	t.State = TaskSucceeded
	if !c.OK {
		t.State = TaskFailed
	}
	t.Error, t.ErrorKind, t.Output, t.DoneAt = c.Error, c.ErrorKind, c.Output, c.At.UTC()
	s.TaskSeq++
	t.DoneSeq = s.TaskSeq
	s.pruneTasks()
	cp := *t
	return &cp, nil
}

// pruneTasks drops the oldest finished tasks beyond MaxFinishedTasks.
func (s *State) pruneTasks() {
	var done []*Task
	for _, t := range s.Tasks {
		if t.State != TaskPending {
			done = append(done, t)
		}
	}
	if len(done) <= MaxFinishedTasks {
		return
	}
	sort.Slice(done, func(i, j int) bool { return done[i].DoneSeq < done[j].DoneSeq })
	for _, t := range done[:len(done)-MaxFinishedTasks] {
		delete(s.Tasks, t.ID)
	}
}

func (s *State) reissueTask(index uint64, c ReissueTaskCmd) (*Task, error) {
	t, ok := s.Tasks[c.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "task %s does not exist", c.ID)
	}
	if c.NewVMID {
		r, ok := s.Reservations[t.ReservationID]
		if !ok {
			return nil, problem.E(problem.Conflict, "task %s holds no reservation whose VMID could change", c.ID)
		}
		old := r.VMID
		s.foreign[old] = true // before the search, so it is not picked again
		vmid, ok := s.freeVMID()
		if !ok {
			delete(s.foreign, old)
			return nil, problem.E(problem.Exhausted, "no free VMID in %d-%d", s.Pools.VMIDMin, s.Pools.VMIDMax)
		}
		_ = s.markForeign([]int{old}, true)
		delete(s.byVMID, old)
		r.VMID = vmid
		s.byVMID[vmid] = r.ID
		s.VMIDCursor = vmid
		t.VMID = vmid
	}
	s.tasksAt = index
	t.Fence, t.State = index, TaskPending
	t.Attempt++
	t.Error, t.ErrorKind, t.Output, t.DoneAt, t.DoneSeq = "", "", nil, time.Time{}, 0
	cp := *t
	return &cp, nil
}

// Task returns a task by ID.
func (s *State) Task(id string) (Task, bool) {
	t, ok := s.Tasks[id]
	if !ok {
		return Task{}, false
	}
	return *t, true
}

// TaskNode returns the node a task is assigned to. A task's node never
// changes, so the answer holds for as long as the task exists.
func (s *State) TaskNode(id string) (string, bool) {
	t, ok := s.Tasks[id]
	if !ok {
		return "", false
	}
	return t.Node, true
}

// TasksChangedAt is the log index of the last change to any task: a
// watcher that has looked at the tasks since then has nothing new to see.
func (s *State) TasksChangedAt() uint64 { return s.tasksAt }

// PendingTasks lists a node's pending tasks issued after index, oldest
// first.
func (s *State) PendingTasks(node string, after uint64) []Task {
	var out []Task
	for _, t := range s.Tasks {
		if t.Node == node && t.State == TaskPending && t.Fence > after {
			out = append(out, *t)
		}
	}
	sortTasks(out)
	return out
}

// sortTasks orders tasks by fence, then ID.
func sortTasks(out []Task) {
	sort.Slice(out, func(i, j int) bool {
		return out[i].Fence < out[j].Fence || (out[i].Fence == out[j].Fence && out[i].ID < out[j].ID)
	})
}

// ListNodes returns the enrolled nodes by name.
func (s *State) ListNodes() []NodeRecord {
	out := make([]NodeRecord, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Node returns one node.
func (s *State) Node(name string) (NodeRecord, bool) {
	n, ok := s.Nodes[name]
	if !ok {
		return NodeRecord{}, false
	}
	return *n, true
}

// ReservedVMID reports whether a reservation holds vmid.
func (s *State) ReservedVMID(vmid int) bool {
	_, ok := s.byVMID[vmid]
	return ok
}

// VMIDNode returns the node of the reservation that holds vmid.
func (s *State) VMIDNode(vmid int) (string, bool) {
	id, ok := s.byVMID[vmid]
	if !ok {
		return "", false
	}
	r, ok := s.Reservations[id]
	if !ok {
		return "", false
	}
	return r.Node, true
}
