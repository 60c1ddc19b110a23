package agent

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// maxQueued bounds the events waiting for delivery. Log lines are dropped
// first when the coordinators are unreachable for long; results never are.
const maxQueued = 10_000

// reporter batches heartbeats, inventory, log lines, progress and results
// into Report calls on the leader.
type reporter struct {
	a       *Agent
	mu      sync.Mutex
	queue   []*pb.TaskEvent
	kick    chan struct{}
	lastInv time.Time
}

func newReporter(a *Agent) *reporter {
	return &reporter{a: a, kick: make(chan struct{}, 1)}
}

func (r *reporter) add(ev *pb.TaskEvent) {
	r.mu.Lock()
	r.queue = append(r.queue, ev)
	if len(r.queue) > maxQueued {
		kept := r.queue[:0]
		drop := len(r.queue) - maxQueued
		for _, e := range r.queue {
			if drop > 0 && e.GetResult() == nil {
				drop--
				continue
			}
			kept = append(kept, e)
		}
		r.queue = kept
	}
	r.mu.Unlock()
	if ev.GetResult() != nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *reporter) log(t *pb.Task, line string) {
	r.add(&pb.TaskEvent{TaskId: t.Id, Fence: t.Fence, Event: &pb.TaskEvent_Log{Log: line}})
}

func (r *reporter) loop(ctx context.Context) {
	for {
		r.flush(ctx)
		select {
		case <-ctx.Done():
			// Deliver what is queued (results above all) before leaving.
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			r.flush(fctx)
			cancel()
			return
		case <-time.After(r.a.heartbeat):
		case <-r.kick:
		}
	}
}

// flush sends one report with everything queued; events leave the queue
// only once the leader has taken them.
func (r *reporter) flush(ctx context.Context) {
	a := r.a
	r.mu.Lock()
	events := append([]*pb.TaskEvent(nil), r.queue...)
	r.mu.Unlock()
	req := &pb.ReportRequest{Node: a.cfg.Node, Events: events, Heartbeat: &pb.Heartbeat{AgentVersion: a.cfg.Version, AdvertiseAddr: a.advertiseAddr()}}
	// Capacity and inventory cost the node's API calls; they go at the
	// inventory's pace, and the other reports carry only liveness and
	// events.
	if time.Since(r.lastInv) >= a.cfg.InventoryEvery {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if ns, err := a.cfg.Runtime.Node(hctx); err == nil {
			req.Heartbeat.MemTotal, req.Heartbeat.MemFree, req.Heartbeat.DiskTotal, req.Heartbeat.DiskFree = ns.MemTotal, ns.MemFree, ns.DiskTotal, ns.DiskFree
			req.Heartbeat.Cpus, req.Heartbeat.PveVersion = uint32(ns.CPUs), ns.Version
		}
		if sts, err := a.cfg.Runtime.Storages(hctx); err == nil {
			for _, st := range sts {
				req.Heartbeat.Storages = append(req.Heartbeat.Storages, &pb.Storage{Name: st.Name, Type: st.Type,
					Content: st.Content, Total: st.Total, Available: st.Available, Shared: st.Shared})
			}
		} else {
			a.log.Warn("storages", "err", err)
		}
		req.Inventory = a.inventory(hctx)
		cancel()
	}
	var resp *pb.ReportResponse
	err := a.call(ctx, func(ctx context.Context, c pb.AgentClient, opts ...grpc.CallOption) error {
		var err error
		resp, err = c.Report(ctx, req, opts...)
		return err
	})
	if err != nil {
		a.log.Debug("report not delivered", "events", len(events), "err", err)
		return
	}
	if req.Inventory != nil {
		r.lastInv = time.Now()
	}
	r.mu.Lock()
	r.queue = r.queue[len(events):]
	r.mu.Unlock()
	refused := map[string]bool{}
	for _, id := range resp.Refused {
		refused[id] = true
	}
	for _, ev := range events {
		if res := ev.GetResult(); res != nil {
			a.exec.delivered(ev.TaskId, ev.Fence, refused[ev.TaskId])
		}
	}
	a.servers.merge(resp.Servers)
	if resp.HeartbeatIntervalMs > 0 {
		a.heartbeat = time.Duration(resp.HeartbeatIntervalMs) * time.Millisecond
	}
}

// inventory lists every VMID in use and the node's containers; nil when
// the node's API does not answer.
func (a *Agent) inventory(ctx context.Context) *pb.Inventory {
	used, err := a.cfg.Runtime.UsedVMIDs(ctx)
	if err != nil {
		a.log.Warn("inventory", "err", err)
		return nil
	}
	cts, err := a.cfg.Runtime.Containers(ctx)
	if err != nil {
		a.log.Warn("inventory", "err", err)
		return nil
	}
	inv := &pb.Inventory{}
	for _, v := range used {
		inv.Vmids = append(inv.Vmids, uint32(v))
	}
	for _, c := range cts {
		inv.Guests = append(inv.Guests, &pb.Guest{Vmid: uint32(c.VMID), Name: c.Name, Status: c.Status, Tags: c.Tags, Lock: c.Lock,
			Cpu: c.CPU, Mem: c.Mem, MaxMem: c.MaxMem, Disk: c.Disk, MaxDisk: c.MaxDisk, NetIn: c.NetIn, NetOut: c.NetOut, Uptime: c.Uptime})
	}
	return inv
}
