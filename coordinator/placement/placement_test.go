package placement

import (
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/problem"
)

func equalNodes() []Node {
	var out []Node
	for _, name := range []string{"pve3", "pve1", "pve2"} {
		out = append(out, Node{Name: name, MemTotalMB: 65536, DiskFreeGB: 1024, CPUs: 16})
	}
	return out
}

var spread = Policy{MemoryOvercommit: 1, CPUOvercommit: 4}

// place places count apps of need one after another, counting each as
// pending on its node (as the API does until an inventory lists it), and
// returns how many went to each node.
func place(t *testing.T, p Policy, nodes []Node, need Need, count int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < count; i++ {
		name, err := p.Choose(nodes, need)
		if err != nil {
			t.Fatalf("app %d: %v", i, err)
		}
		got[name]++
		for j := range nodes {
			if nodes[j].Name == name {
				nodes[j].Pending.MemoryMB += need.MemoryMB
				nodes[j].Pending.DiskGB += need.DiskGB
				nodes[j].Cores += need.Cores
			}
		}
	}
	return got
}

// TestSpreadCountsPendingApps: apps placed but not yet reported count, so
// seven apps on three equal nodes go 3/2/2, the first to the node whose
// name sorts first.
func TestSpreadCountsPendingApps(t *testing.T) {
	got := place(t, spread, equalNodes(), Need{MemoryMB: 512, DiskGB: 4, Cores: 1}, 7)
	if got["pve1"] != 3 || got["pve2"] != 2 || got["pve3"] != 2 {
		t.Fatalf("seven apps on three equal nodes: %v", got)
	}
}

// TestPackFillsOneNodeFirst: pack takes the fitting node with the least
// memory free, and moves on only when it is full.
func TestPackFillsOneNodeFirst(t *testing.T) {
	pack := spread
	pack.Pack = true
	got := place(t, pack, equalNodes(), Need{MemoryMB: 16384, DiskGB: 4, Cores: 1}, 5)
	if got["pve1"] != 4 || got["pve2"] != 1 || got["pve3"] != 0 {
		t.Fatalf("pack: %v", got)
	}
}

// TestOvercommitLetsMoreFit: a second 40 GiB app does not fit a 64 GiB
// node without overcommit, and does with memory_overcommit 2.
func TestOvercommitLetsMoreFit(t *testing.T) {
	node := []Node{{Name: "pve1", MemTotalMB: 65536, DiskFreeGB: 1024, CPUs: 16, Pending: Need{MemoryMB: 40960}}}
	need := Need{MemoryMB: 40960, DiskGB: 8, Cores: 2}
	if _, err := spread.Choose(node, need); problem.TypeOf(err) != ProblemCapacity {
		t.Fatalf("without overcommit: %v", err)
	}
	over := spread
	over.MemoryOvercommit = 2
	if n, err := over.Choose(node, need); err != nil || n != "pve1" {
		t.Fatalf("with memory overcommit 2: %q %v", n, err)
	}
	// CPUs: 16 × 1 holds 16 cores of apps, 16 × 4 holds 64.
	busy := []Node{{Name: "pve1", MemTotalMB: 65536, DiskFreeGB: 1024, CPUs: 16, Cores: 16}}
	if _, err := (Policy{MemoryOvercommit: 1, CPUOvercommit: 1}).Choose(busy, Need{MemoryMB: 128, DiskGB: 1, Cores: 1}); err == nil {
		t.Fatal("a 17th core fit 16 CPUs without overcommit")
	}
	if _, err := spread.Choose(busy, Need{MemoryMB: 128, DiskGB: 1, Cores: 1}); err != nil {
		t.Fatalf("a 17th core with cpu overcommit 4: %v", err)
	}
}

// TestOversizedAppNamesTheShortfall: the refusal is a capacity Conflict
// that says what the app needs and the most any ready node has.
func TestOversizedAppNamesTheShortfall(t *testing.T) {
	nodes := equalNodes()
	nodes[2].MemUsedMB = 65536 - 4096 // pve2 has the most: 4096 MiB
	nodes[0].MemUsedMB, nodes[1].MemUsedMB = 65536-1024, 65536-2048
	_, err := spread.Choose(nodes, Need{MemoryMB: 8192, DiskGB: 4, Cores: 1})
	if !problem.Is(err, problem.Conflict) || problem.TypeOf(err) != ProblemCapacity {
		t.Fatalf("oversized: %v", err)
	}
	if want := "the app needs 8192 MiB memory; the most free on a ready node is 4096 MiB memory on pve2"; !strings.Contains(err.Error(), want) {
		t.Fatalf("detail %q, want %q", err, want)
	}
	// Each resource fits somewhere, but no node has all of them.
	split := []Node{
		{Name: "a", MemTotalMB: 8192, DiskFreeGB: 1, CPUs: 16},
		{Name: "b", MemTotalMB: 1024, DiskFreeGB: 100, CPUs: 16},
	}
	_, err = spread.Choose(split, Need{MemoryMB: 4096, DiskGB: 10, Cores: 1})
	if err == nil || !strings.Contains(err.Error(), "no ready node has all of them free") || !strings.Contains(err.Error(), "b has 1024 MiB memory") {
		t.Fatalf("split: %v", err)
	}
	// A named node that cannot take it.
	if err := spread.Fits(nodes[2], Need{MemoryMB: 8192}); err == nil || !strings.Contains(err.Error(), "pve2 has 4096 MiB memory free") {
		t.Fatalf("fits: %v", err)
	}
}
