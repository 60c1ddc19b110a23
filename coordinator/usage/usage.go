// Package usage keeps the recent resource use of the nodes' containers in
// the leader's memory: one sample per container each time its node's
// inventory arrives, for an hour at most, so the API can answer an app's
// metrics over time (GET /api/v1/apps/{id}/metrics?range=1h).
//
// Nothing here goes through Raft or to disk: a server that begins to lead
// starts with no history, and a follower keeps none.
//
// Memory is bounded twice: a series (one container) keeps at most
// MaxPoints samples, and the store at most Budget samples in all. When
// there are more containers than Budget/MaxPoints, every series keeps
// Budget/series samples (a shorter history for each), but never fewer
// than MinPoints; a container beyond Budget/MinPoints series gets no
// history until others go.
package usage

import (
	"sync"
	"time"
	"unique"
)

const (
	// Window is how far back a series goes.
	Window = time.Hour
	// MaxPoints bounds one series: an hour at the agents' default
	// inventory interval (5 s).
	MaxPoints = 720
	// MinPoints is the least a series keeps when many share the budget.
	MinPoints = 60
	// DefaultBudget bounds the samples of all series: 262144 samples of
	// pointSize bytes, about 18 MiB, a full hour for 364 containers.
	DefaultBudget = 1 << 18
	// sweepEvery is how often series that stopped getting samples (their
	// node gone or silent) are looked for.
	sweepEvery = time.Minute
)

// Sample is one report of a container. CPU is the fraction of the
// container's CPUs in use (0-1); NetIn and NetOut are byte counters since
// the container started (they fall back when it restarts).
type Sample struct {
	At                                        time.Time
	Status                                    string
	CPU                                       float64
	Mem, MaxMem, Disk, MaxDisk, NetIn, NetOut uint64
}

// Reading is a container's sample as a node reports it.
type Reading struct {
	VMID int
	Sample
}

// point is a Sample as kept: pointSize bytes, the status shared.
type point struct {
	at                                        int64 // Unix nanoseconds
	cpu                                       float64
	mem, maxMem, disk, maxDisk, netIn, netOut uint64
	status                                    unique.Handle[string]
}

// pointSize is the size of a point (for the memory figures above).
const pointSize = 8 + 8 + 6*8 + 8

func (p point) sample() Sample {
	return Sample{At: time.Unix(0, p.at).UTC(), Status: p.status.Value(), CPU: p.cpu,
		Mem: p.mem, MaxMem: p.maxMem, Disk: p.disk, MaxDisk: p.maxDisk, NetIn: p.netIn, NetOut: p.netOut}
}

// ring is one container's series, oldest first from head. Its buffer
// grows as samples come, up to the limit in force when it grows.
type ring struct {
	buf     []point
	head, n int
}

func (r *ring) at(i int) *point { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) newest() *point {
	if r.n == 0 {
		return nil
	}
	return r.at(r.n - 1)
}

// resize moves the newest min(n, size) points into a buffer of size.
func (r *ring) resize(size int) {
	keep := min(r.n, size)
	buf := make([]point, size)
	for i := range keep {
		buf[i] = *r.at(r.n - keep + i)
	}
	r.buf, r.head, r.n = buf, 0, keep
}

// push adds p as the newest point, keeping at most limit points and none
// older than oldest.
func (r *ring) push(p point, limit int, oldest int64) {
	for r.n > 0 && r.at(0).at < oldest {
		r.head, r.n = (r.head+1)%len(r.buf), r.n-1
	}
	switch {
	case len(r.buf) > limit: // the limit fell: give memory back
		r.resize(limit)
	case r.n == len(r.buf) && len(r.buf) < limit:
		r.resize(min(max(2*len(r.buf), 8), limit))
	}
	if r.n == len(r.buf) { // full at the limit: the oldest goes
		r.head, r.n = (r.head+1)%len(r.buf), r.n-1
	}
	*r.at(r.n) = p
	r.n++
}

type key struct {
	node string
	vmid int
}

// Store is the leader's history. The zero value is not usable; use New.
type Store struct {
	budget, maxPoints, minPoints int
	window                       time.Duration

	mu        sync.RWMutex
	series    map[key]*ring
	lastSweep time.Time
	refused   int
}

// New returns a store holding at most budget samples (DefaultBudget when
// budget <= 0).
func New(budget int) *Store {
	if budget <= 0 {
		budget = DefaultBudget
	}
	return &Store{budget: budget, maxPoints: MaxPoints, minPoints: min(MinPoints, budget), window: Window, series: map[key]*ring{}}
}

// limit is how many points each series may keep with n series.
func (s *Store) limit(n int) int {
	return min(s.maxPoints, max(s.minPoints, s.budget/max(n, 1)))
}

// Record takes one inventory of node at time at: a sample for each
// container in it, and the end of the history of the node's containers
// that are not in it any more. A sample not later than its series'
// newest is dropped (the history stays in order).
func (s *Store) Record(node string, at time.Time, readings []Reading) {
	t := at.UnixNano()
	oldest := at.Add(-s.window).UnixNano()
	in := make(map[int]bool, len(readings))
	for _, r := range readings {
		in[r.VMID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.series {
		if k.node == node && !in[k.vmid] {
			delete(s.series, k)
		}
	}
	if at.Sub(s.lastSweep) >= sweepEvery || at.Before(s.lastSweep) {
		s.lastSweep = at
		for k, r := range s.series {
			if p := r.newest(); p == nil || p.at < oldest {
				delete(s.series, k)
			}
		}
	}
	maxSeries := s.budget / s.minPoints
	for _, rd := range readings {
		k := key{node, rd.VMID}
		r := s.series[k]
		if r == nil {
			if len(s.series) >= maxSeries {
				s.refused++
				continue
			}
			r = &ring{}
			s.series[k] = r
		}
		if p := r.newest(); p != nil && p.at >= t {
			continue
		}
		r.push(point{at: t, cpu: rd.CPU, mem: rd.Mem, maxMem: rd.MaxMem, disk: rd.Disk, maxDisk: rd.MaxDisk,
			netIn: rd.NetIn, netOut: rd.NetOut, status: unique.Make(rd.Status)}, s.limit(len(s.series)), oldest)
	}
}

// History returns the samples of a node's container taken at or after
// since, oldest first (nil when there are none).
func (s *Store) History(node string, vmid int, since time.Time) []Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.series[key{node, vmid}]
	if r == nil {
		return nil
	}
	from := since.UnixNano()
	var out []Sample
	for i := range r.n {
		if p := r.at(i); p.at >= from {
			out = append(out, p.sample())
		}
	}
	return out
}

// Reset forgets everything (a new term begins).
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series, s.lastSweep, s.refused = map[key]*ring{}, time.Time{}, 0
}

// Stats are figures of the store's memory.
type Stats struct {
	// Series is the containers with a history; Points the samples kept;
	// Allocated the sample slots allocated (each pointSize bytes), which
	// stays within the budget but for a report interval after the number
	// of series grew; Refused the samples of containers turned away
	// because the budget was full of series.
	Series, Points, Allocated, Refused int
	// Bytes is Allocated times the size of a sample.
	Bytes int
}

// Stats returns the store's figures.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Series: len(s.series), Refused: s.refused}
	for _, r := range s.series {
		st.Points += r.n
		st.Allocated += len(r.buf)
	}
	st.Bytes = st.Allocated * pointSize
	return st
}
