package agentsvc

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// lead runs the service's TTL checks until the test ends.
func (h *harness) lead() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.s.Lead(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestNodeGoesDownAfterMissedHeartbeatsAndComesBack: a new leader grants
// every node two TTLs; a node that reports stays ready however long it
// lives, one that misses a TTL of reports is marked down, and its next
// report makes it ready again.
func TestNodeGoesDownAfterMissedHeartbeatsAndComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		ttl := h.s.cfg.TTL
		a := h.join("pve1", h.token(""))
		h.join("pve2", h.token(""))
		h.lead()
		status := func(node string) string { return h.node(node).Status }

		time.Sleep(2*ttl - time.Second)
		synctest.Wait()
		if status("pve1") != fsm.NodeReady || status("pve2") != fsm.NodeReady {
			t.Fatalf("down within a new leader's grace: pve1 %s, pve2 %s", status("pve1"), status("pve2"))
		}
		h.heartbeat(a)
		// The deadline is checked every tenth of the TTL.
		time.Sleep(time.Second + ttl/10 + time.Millisecond)
		synctest.Wait()
		if status("pve2") != fsm.NodeDown {
			t.Fatalf("pve2 silent past its grace: %s, want down", status("pve2"))
		}
		for range 20 { // 40 s of heartbeats, more than two TTLs
			if status("pve1") != fsm.NodeReady {
				t.Fatalf("pve1 reporting every 2 s: %s", status("pve1"))
			}
			time.Sleep(h.s.cfg.Heartbeat)
			h.heartbeat(a)
		}
		time.Sleep(ttl - time.Second)
		synctest.Wait()
		if status("pve1") != fsm.NodeReady {
			t.Fatalf("pve1 down within its TTL: %s", status("pve1"))
		}
		time.Sleep(time.Second + ttl/10 + time.Millisecond)
		synctest.Wait()
		if status("pve1") != fsm.NodeDown {
			t.Fatalf("pve1 silent for a TTL: %s, want down", status("pve1"))
		}
		down := h.node("pve1").StatusAt
		h.heartbeat(a)
		if n := h.node("pve1"); n.Status != fsm.NodeReady || !n.StatusAt.After(down) {
			t.Fatalf("pve1 after it reported again: %s at %v", n.Status, n.StatusAt)
		}
		li, ok := h.s.NodeLive("pve1")
		if !ok || !li.LastHeartbeat.Equal(time.Now()) || li.AgentVersion != "1.0" {
			t.Fatalf("pve1's live record: %+v", li)
		}
	})
}

// TestHeartbeatRecordsCapacityAndAddress: a heartbeat with capacity
// updates the node's live record (one without keeps it), and the address
// the agent advertises is written to the node's record once it changes;
// an invalid one is not.
func TestHeartbeatRecordsCapacityAndAddress(t *testing.T) {
	h := newHarness(t, func() time.Time { return t0 })
	a := h.join("pve1", h.token(""))
	ctx := h.mustAuthed(a, pb.Agent_Report_FullMethodName)
	report := func(hb *pb.Heartbeat) {
		t.Helper()
		if _, err := h.s.Report(ctx, &pb.ReportRequest{Node: "pve1", Heartbeat: hb}); err != nil {
			t.Fatal(err)
		}
	}
	report(&pb.Heartbeat{AgentVersion: "1.1", MemTotal: 8 << 30, MemFree: 4 << 30, Cpus: 4, PveVersion: "8.2",
		Storages: []*pb.Storage{{Name: "local"}}, AdvertiseAddr: "192.0.2.50"})
	report(&pb.Heartbeat{AgentVersion: "1.1", AdvertiseAddr: "not an address!"})
	li, _ := h.s.NodeLive("pve1")
	if li.MemTotal != 8<<30 || li.CPUs != 4 || li.PVEVersion != "8.2" || len(li.Storages) != 1 {
		t.Fatalf("live record %+v", li)
	}
	if got := h.node("pve1").Address; got != "192.0.2.50" {
		t.Fatalf("node address %q", got)
	}
}

// TestInventoryMarksAndUnmarksForeignVMIDs: VMIDs a node reports that no
// reservation holds are marked foreign; once every node has reported in
// the term, a foreign VMID no node reports any more is unmarked.
func TestInventoryMarksAndUnmarksForeignVMIDs(t *testing.T) {
	h := newHarness(t, func() time.Time { return t0 })
	a := h.join("pve1", h.token(""))
	b := h.join("pve2", h.token(""))
	inv := func(who *agent, vmids ...uint32) {
		t.Helper()
		ctx := h.mustAuthed(who, pb.Agent_Report_FullMethodName)
		var guests []*pb.Guest
		for _, v := range vmids {
			guests = append(guests, &pb.Guest{Vmid: v, Status: "running"})
		}
		if _, err := h.s.Report(ctx, &pb.ReportRequest{Node: who.node, Inventory: &pb.Inventory{Vmids: vmids, Guests: guests}}); err != nil {
			t.Fatal(err)
		}
	}
	foreign := func() []int {
		var out []int
		h.b.FSM().Read(func(s *fsm.State) { out = slices.Clone(s.Foreign) })
		slices.Sort(out)
		return out
	}
	inv(a, 100, 101, 50) // below 100 is never Proximity's
	if got := foreign(); !slices.Equal(got, []int{100, 101}) {
		t.Fatalf("foreign %v after pve1's inventory", got)
	}
	inv(a, 101)
	if got := foreign(); !slices.Equal(got, []int{100, 101}) {
		t.Fatalf("foreign %v: unmarked before every node reported", got)
	}
	inv(b)
	if got := foreign(); !slices.Equal(got, []int{101}) {
		t.Fatalf("foreign %v once every node reported, want [101]", got)
	}
	if li, _ := h.s.NodeLive("pve1"); !li.Inventoried || len(li.Guests) != 1 || !li.VMIDs[101] {
		t.Fatalf("pve1's live record %+v", li)
	}
	if hist := h.s.History("pve1", 101, time.Time{}); len(hist) == 0 {
		t.Fatal("no metrics history kept from the inventory")
	}
}
