// Package placement chooses the node an app is deployed on and decides
// whether a node can take an app. It is pure: the caller (the API, on the
// leader, under one lock) gathers what the nodes last reported and what
// the registry holds, and the same views always give the same answer.
//
// What a node has free, for each resource:
//
//	memory = total × memory_overcommit − used − pending memory
//	disk   = available on the containers' storage − pending disk
//	cores  = CPUs × cpu_overcommit − cores of the node's apps
//
// where used is the larger of what the node reports in use and the memory
// limits of the containers its last inventory listed, and pending is what
// the apps placed on the node hold that its last inventory did not list
// yet (being deployed, or placed since the report). An app counts once:
// by its container's limit when the inventory shows it, by its own
// resources until then. Disk is not overcommitted.
//
// An app fits a node when each of its resources fits. Spread takes the
// fitting node with the most memory free after the app, pack the one with
// the least (filling one node before the next); ties go to the node whose
// name sorts first.
package placement

import (
	"fmt"
	"sort"
	"strings"

	"github.com/proximity-ve/proximity/internal/problem"
)

// ProblemCapacity is the problem type of a refusal for want of capacity;
// its kind is Conflict (409).
const ProblemCapacity = "capacity"

// Need is what an app holds.
type Need struct {
	MemoryMB int64
	DiskGB   int64
	Cores    int64
}

// Node is what placement knows of one ready node that has reported its
// capacity.
type Node struct {
	Name       string
	MemTotalMB int64 // as reported
	MemUsedMB  int64 // the larger of reported use and the listed containers' limits
	DiskFreeGB int64 // available on the containers' storage (or the root file system)
	CPUs       int64
	// Pending is what apps placed on the node hold that its last
	// inventory did not list.
	Pending Need
	// Cores is the cores of all of Proximity's apps on the node.
	Cores int64
}

// Policy is the strategy and the overcommit factors (each ≥ 1).
type Policy struct {
	Pack             bool
	MemoryOvercommit float64
	CPUOvercommit    float64
}

// Free is what n has free under p.
func (p Policy) Free(n Node) Need {
	return Need{
		MemoryMB: int64(float64(n.MemTotalMB)*p.MemoryOvercommit) - n.MemUsedMB - n.Pending.MemoryMB,
		DiskGB:   n.DiskFreeGB - n.Pending.DiskGB,
		Cores:    int64(float64(n.CPUs)*p.CPUOvercommit) - n.Cores,
	}
}

type resource struct {
	name, unit string
	get        func(Need) int64
}

var resources = []resource{
	{"memory", "MiB", func(n Need) int64 { return n.MemoryMB }},
	{"disk", "GiB", func(n Need) int64 { return n.DiskGB }},
	{"cores", "", func(n Need) int64 { return n.Cores }},
}

func (r resource) amount(v int64) string {
	if r.unit == "" {
		return fmt.Sprintf("%d %s", v, r.name)
	}
	return fmt.Sprintf("%d %s %s", v, r.unit, r.name)
}

// Fits returns nil if need fits n under p, or a capacity Conflict naming
// the first resource short.
func (p Policy) Fits(n Node, need Need) error {
	free := p.Free(n)
	for _, r := range resources {
		if r.get(need) > r.get(free) {
			return capacity("node %s cannot take the app: it needs %s; %s has %s free",
				n.Name, r.amount(r.get(need)), n.Name, r.amount(max(r.get(free), 0)))
		}
	}
	return nil
}

// Choose picks the node for need among nodes, or answers a capacity
// Conflict naming the shortfall. nodes must not be empty.
func (p Policy) Choose(nodes []Node, need Need) (string, error) {
	sorted := append([]Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	best, bestFree := "", int64(0)
	for _, n := range sorted {
		if p.Fits(n, need) != nil {
			continue
		}
		after := p.Free(n).MemoryMB - need.MemoryMB
		if best == "" || (!p.Pack && after > bestFree) || (p.Pack && after < bestFree) {
			best, bestFree = n.Name, after
		}
	}
	if best != "" {
		return best, nil
	}
	// Name the first resource no node has enough of, with the most any
	// node has; else say that no node has all of them at once.
	for _, r := range resources {
		most, where := int64(-1), ""
		for _, n := range sorted {
			if f := r.get(p.Free(n)); f > most {
				most, where = f, n.Name
			}
		}
		if r.get(need) > most {
			return "", capacity("the app needs %s; the most free on a ready node is %s on %s",
				r.amount(r.get(need)), r.amount(max(most, 0)), where)
		}
	}
	var each []string
	for _, n := range sorted {
		f := p.Free(n)
		each = append(each, fmt.Sprintf("%s has %d MiB memory, %d GiB disk, %d cores", n.Name, max(f.MemoryMB, 0), max(f.DiskGB, 0), max(f.Cores, 0)))
	}
	return "", capacity("the app needs %d MiB memory, %d GiB disk and %d cores; no ready node has all of them free (%s)",
		need.MemoryMB, need.DiskGB, need.Cores, strings.Join(each, "; "))
}

func capacity(format string, args ...any) error {
	return &problem.Error{Kind: problem.Conflict, Type: ProblemCapacity, Detail: fmt.Sprintf(format, args...)}
}
