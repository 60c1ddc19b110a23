package agentsvc

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/usage"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

func serverKeepalive() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: proto.KeepaliveTime, Timeout: proto.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: proto.KeepaliveMinTime, PermitWithoutStream: true}),
	}
}

// Live is what the leader knows about a node beyond its FSM record.
type Live struct {
	LastHeartbeat time.Time
	AgentVersion  string
	PVEVersion    string
	MemTotal      uint64
	MemFree       uint64
	DiskTotal     uint64
	DiskFree      uint64
	CPUs          uint32
	Guests        []*pb.Guest
	// Storages are the node's storages from its last inventory report
	// (nil until one carried them).
	Storages []*pb.Storage
	// Inventoried is set once the node has sent an inventory to this
	// server: until then Guests and VMIDs say nothing.
	Inventoried bool
	// VMIDs is every VMID the node's last inventory reported in use in
	// its Proxmox cluster (VMs and other nodes' guests too). It is
	// replaced, never changed in place, so a copy of Live may keep it.
	VMIDs map[int]bool
}

// maxTaskLog bounds the log lines kept per task in memory, and
// maxLogLine the length of one.
const (
	maxTaskLog = 200
	maxLogLine = 4096
)

// liveness keeps node heartbeats in the leader's memory. Only status
// changes (ready ↔ down) go through Raft.
type liveness struct {
	s  *Service
	mu sync.Mutex
	// deadline is when each node's TTL runs out.
	deadline map[string]time.Time
	info     map[string]*Live
	// used is each node's last reported VMID list, since this term began.
	used map[string]map[int]bool
	logs map[string][]string
}

func newLiveness(s *Service) *liveness {
	return &liveness{s: s, deadline: map[string]time.Time{}, info: map[string]*Live{}, used: map[string]map[int]bool{}, logs: map[string][]string{}}
}

func (l *liveness) seen(node string, hb *pb.Heartbeat) {
	now := l.s.cfg.Now()
	l.mu.Lock()
	l.deadline[node] = now.Add(l.s.cfg.TTL)
	li := l.info[node]
	if li == nil {
		li = &Live{}
		l.info[node] = li
	}
	li.LastHeartbeat = now
	if hb != nil {
		li.AgentVersion = hb.AgentVersion
		if hb.MemTotal > 0 { // capacity comes with the inventory, not every beat
			li.PVEVersion = hb.PveVersion
			li.MemTotal, li.MemFree, li.DiskTotal, li.DiskFree, li.CPUs = hb.MemTotal, hb.MemFree, hb.DiskTotal, hb.DiskFree, hb.Cpus
			if hb.Storages != nil {
				li.Storages = hb.Storages
			}
		}
	}
	l.mu.Unlock()
	var st, addr string
	l.s.b.FSM().Read(func(x *fsm.State) {
		if n, ok := x.Node(node); ok {
			st, addr = n.Status, n.Address
		}
	})
	if st == fsm.NodeDown {
		l.setStatus(context.Background(), node, fsm.NodeReady)
	}
	if hb != nil && hb.AdvertiseAddr != "" && hb.AdvertiseAddr != addr {
		l.setAddress(node, hb.AdvertiseAddr)
	}
}

// setAddress records the address a node's agent reports, when it
// changed: the node record (and so the apps' URLs) follows the agent's
// --advertise-addr or the address it connects from.
func (l *liveness) setAddress(node, addr string) {
	if err := fsm.ValidNodeAddress(addr); err != nil {
		if l.s.logs.allow() {
			l.s.log.Warn("node address not recorded", "node", node, "err", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.s.propose(ctx, fsm.Command{Type: fsm.CmdSetNodeAddress, RequestID: l.s.cfg.NewID("nodeaddr_"),
		SetNodeAddress: &fsm.SetNodeAddressCmd{Node: node, Address: addr}})
	if err != nil {
		l.s.log.Warn("node address change not written", "node", node, "address", addr, "err", err)
		return
	}
	l.s.log.Info("node address", "node", node, "address", addr)
}

func (l *liveness) setStatus(ctx context.Context, node, status string) {
	_, err := l.s.propose(ctx, fsm.Command{Type: fsm.CmdNodeStatus, RequestID: l.s.cfg.NewID("nodestatus_"),
		NodeStatus: &fsm.NodeStatusCmd{Node: node, Status: status, At: l.s.cfg.Now()}})
	if err != nil {
		l.s.log.Warn("node status change not written", "node", node, "status", status, "err", err)
		return
	}
	l.s.log.Info("node status", "node", node, "status", status)
}

// Lead runs the TTL checks while this server leads; ctx ends with the
// term. A new leader has no heartbeats yet, so every node first gets a
// generous grace period (two TTLs) before it can be declared down.
func (s *Service) Lead(ctx context.Context) {
	l := s.live
	now := s.cfg.Now()
	l.mu.Lock()
	s.b.FSM().Read(func(st *fsm.State) {
		for _, n := range st.ListNodes() {
			l.deadline[n.Name] = now.Add(2 * s.cfg.TTL)
		}
	})
	l.used = map[string]map[int]bool{}
	l.mu.Unlock()
	// The metrics' history is this term's: it starts empty and is let go
	// when the term ends.
	s.usage.Reset()
	defer s.usage.Reset()
	tick := time.NewTicker(max(s.cfg.TTL/10, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.cfg.Now()
		var expired []string
		s.b.FSM().Read(func(st *fsm.State) {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, n := range st.ListNodes() {
				d, ok := l.deadline[n.Name]
				if !ok {
					l.deadline[n.Name] = now.Add(2 * s.cfg.TTL)
					continue
				}
				if n.Status == fsm.NodeReady && now.After(d) {
					expired = append(expired, n.Name)
				}
			}
		})
		for _, n := range expired {
			l.setStatus(ctx, n, fsm.NodeDown)
		}
	}
}

// inventory marks every VMID the node reports in use that no reservation
// holds as foreign, and unmarks foreign VMIDs that no node reports any
// more once every enrolled node has reported in this term.
//
// A node reports only what it holds: a VMID that the registry holds for
// another node's reservation (another node's app) is not the node's to
// report, so it is left out of the node's VMIDs and containers. It can
// then neither be listed as an unmanaged container of this node nor stand
// for the other node's app (whose metrics come from its own node's
// report). Such a VMID can be a real collision, a container made by hand
// with a VMID that Proximity reserved elsewhere, so the report is not
// refused; the leader logs it.
func (l *liveness) inventory(ctx context.Context, node string, inv *pb.Inventory) {
	used := make(map[int]bool, len(inv.Vmids))
	all := make(map[int]bool, len(inv.Vmids))
	for _, v := range inv.Vmids {
		used[int(v)] = true
		all[int(v)] = true
	}
	guests := make([]*pb.Guest, 0, len(inv.Guests))
	others := map[int]bool{}
	l.s.b.FSM().Read(func(st *fsm.State) {
		holds := func(vmid int) bool {
			n, held := st.VMIDNode(vmid)
			return !held || n == node
		}
		for v := range used {
			if !holds(v) {
				others[v] = true
				delete(used, v)
			}
		}
		for _, g := range inv.Guests {
			if holds(int(g.Vmid)) {
				guests = append(guests, g)
			} else {
				others[int(g.Vmid)] = true
			}
		}
	})
	if len(others) > 0 && l.s.logs.allow() {
		l.s.log.Warn("inventory: VMIDs the registry holds for another node's apps left out of this node's report",
			"node", node, "vmids", slices.Sorted(maps.Keys(others)))
	}
	readings := make([]usage.Reading, 0, len(guests))
	for _, g := range guests {
		readings = append(readings, usage.Reading{VMID: int(g.Vmid), Sample: usage.Sample{Status: g.Status, CPU: g.Cpu,
			Mem: g.Mem, MaxMem: g.MaxMem, Disk: g.Disk, MaxDisk: g.MaxDisk, NetIn: g.NetIn, NetOut: g.NetOut}})
	}
	l.s.usage.Record(node, l.s.cfg.Now(), readings)
	l.mu.Lock()
	l.used[node] = used
	if li := l.info[node]; li != nil {
		li.Guests, li.VMIDs, li.Inventoried = guests, all, true
	}
	reported := make(map[string]map[int]bool, len(l.used))
	for k, v := range l.used {
		reported[k] = v
	}
	l.mu.Unlock()

	var mark, unmark []int
	l.s.b.FSM().Read(func(st *fsm.State) {
		for v := range used {
			if !st.ReservedVMID(v) && !st.IsForeign(v) && v >= 100 {
				mark = append(mark, v)
			}
		}
		// Only enrolled nodes count: a removed node's last report does not.
		nodes := st.ListNodes()
		for _, n := range nodes {
			if reported[n.Name] == nil {
				return // not every node has reported yet
			}
		}
		for _, v := range st.Foreign {
			seen := false
			for _, n := range nodes {
				seen = seen || reported[n.Name][v]
			}
			if !seen {
				unmark = append(unmark, v)
			}
		}
	})
	sort.Ints(mark)
	sort.Ints(unmark)
	if len(mark) > 0 {
		if _, err := l.s.propose(ctx, fsm.Command{Type: fsm.CmdMarkForeign, RequestID: l.s.cfg.NewID("foreign_"), Foreign: &fsm.ForeignCmd{VMIDs: mark}}); err != nil {
			l.s.log.Warn("mark foreign", "vmids", mark, "err", err)
		} else {
			l.s.log.Info("VMIDs used outside Proximity marked foreign", "node", node, "vmids", mark)
		}
	}
	if len(unmark) > 0 {
		if _, err := l.s.propose(ctx, fsm.Command{Type: fsm.CmdUnmarkForeign, RequestID: l.s.cfg.NewID("foreign_"), Foreign: &fsm.ForeignCmd{VMIDs: unmark}}); err != nil {
			l.s.log.Warn("unmark foreign", "vmids", unmark, "err", err)
		}
	}
}

func (l *liveness) taskLog(id, line string) {
	if len(line) > maxLogLine {
		line = strings.ToValidUTF8(line[:maxLogLine], "") + " …"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append(l.logs[id], line)
	if len(lines) > maxTaskLog {
		lines = lines[len(lines)-maxTaskLog:]
	}
	l.logs[id] = lines
}

// NodeLive returns what the leader knows of a node's heartbeats.
func (s *Service) NodeLive(node string) (Live, bool) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	li, ok := s.live.info[node]
	if !ok {
		return Live{}, false
	}
	return *li, true
}

// History returns the samples of a node's container since a time, oldest
// first, from the inventories this server took while it leads (package
// usage).
func (s *Service) History(node string, vmid int, since time.Time) []usage.Sample {
	return s.usage.History(node, vmid, since)
}

// TaskLog returns the log lines the agent reported for a task.
func (s *Service) TaskLog(id string) []string {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return append([]string(nil), s.live.logs[id]...)
}

// Submit queues a task for a node's agent. The ID is the caller's, so a
// retry after an unknown outcome is the same task.
func (s *Service) Submit(ctx context.Context, t fsm.Task, spec any) (fsm.Task, error) {
	if spec != nil {
		b, err := json.Marshal(spec)
		if err != nil {
			return fsm.Task{}, err
		}
		t.Spec = b
	}
	t.CreatedAt = s.cfg.Now()
	res, err := s.propose(ctx, fsm.Command{Type: fsm.CmdCreateTask, RequestID: "task/" + t.ID, CreateTask: &t})
	if err != nil {
		return fsm.Task{}, err
	}
	return *res.Task, nil
}

// Await waits until a task is no longer pending and returns it.
func (s *Service) Await(ctx context.Context, id string) (fsm.Task, error) {
	for {
		changed := s.b.FSM().Changed()
		var t fsm.Task
		var ok bool
		s.b.FSM().Read(func(st *fsm.State) { t, ok = st.Task(id) })
		if !ok {
			return t, problem.E(problem.NotFound, "task %s does not exist", id)
		}
		if t.State != fsm.TaskPending {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-changed:
		}
	}
}
