package usage

import (
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func reading(vmid int, mem uint64) Reading {
	return Reading{VMID: vmid, Sample: Sample{Status: "running", CPU: 0.25, Mem: mem, MaxMem: 1 << 30, Disk: 1 << 20, MaxDisk: 1 << 33, NetIn: mem * 2, NetOut: mem * 3}}
}

// TestOrderAndFields: samples come back oldest first, with every field,
// and since filters them.
func TestOrderAndFields(t *testing.T) {
	s := New(0)
	for i := range 10 {
		s.Record("pve1", t0.Add(time.Duration(i)*5*time.Second), []Reading{reading(101, uint64(i))})
	}
	h := s.History("pve1", 101, time.Time{})
	if len(h) != 10 {
		t.Fatalf("%d samples, want 10", len(h))
	}
	for i, x := range h {
		want := Sample{At: t0.Add(time.Duration(i) * 5 * time.Second), Status: "running", CPU: 0.25, Mem: uint64(i), MaxMem: 1 << 30,
			Disk: 1 << 20, MaxDisk: 1 << 33, NetIn: uint64(2 * i), NetOut: uint64(3 * i)}
		if x != want {
			t.Fatalf("sample %d: %+v, want %+v", i, x, want)
		}
	}
	if h := s.History("pve1", 101, t0.Add(30*time.Second)); len(h) != 4 || h[0].Mem != 6 {
		t.Fatalf("since 30s: %+v", h)
	}
	if h := s.History("pve2", 101, time.Time{}); h != nil {
		t.Fatalf("another node's container: %+v", h)
	}
	// A sample not later than the newest (a clock that went back) is
	// dropped, so the history stays in order.
	s.Record("pve1", t0.Add(20*time.Second), []Reading{reading(101, 99)})
	s.Record("pve1", t0.Add(45*time.Second), []Reading{reading(101, 98)})
	if h := s.History("pve1", 101, time.Time{}); len(h) != 10 || h[9].Mem != 9 {
		t.Fatalf("after earlier samples: %d samples, newest %+v", len(h), h[len(h)-1])
	}
}

// TestWindowAndCap: a series keeps an hour at most, and MaxPoints samples
// even when they come faster than every 5 s.
func TestWindowAndCap(t *testing.T) {
	s := New(0)
	// One sample a minute for two hours: the first hour goes.
	for i := range 120 {
		s.Record("pve1", t0.Add(time.Duration(i)*time.Minute), []Reading{reading(101, uint64(i))})
	}
	h := s.History("pve1", 101, time.Time{})
	if len(h) != 61 || h[0].At != t0.Add(59*time.Minute) || h[60].At != t0.Add(119*time.Minute) {
		t.Fatalf("after two hours at 1/min: %d samples, %v to %v", len(h), h[0].At, h[len(h)-1].At)
	}
	// One a second for 20 minutes: the newest MaxPoints stay.
	s = New(0)
	for i := range 1200 {
		s.Record("pve1", t0.Add(time.Duration(i)*time.Second), []Reading{reading(101, uint64(i))})
	}
	h = s.History("pve1", 101, time.Time{})
	if len(h) != MaxPoints || h[0].Mem != 1200-MaxPoints || h[MaxPoints-1].Mem != 1199 {
		t.Fatalf("after 1200 samples: %d, from %d to %d", len(h), h[0].Mem, h[len(h)-1].Mem)
	}
	if st := s.Stats(); st.Allocated != MaxPoints || st.Points != MaxPoints || st.Series != 1 {
		t.Fatalf("stats: %+v", st)
	}
	for i := 1; i < len(h); i++ {
		if !h[i].At.After(h[i-1].At) {
			t.Fatalf("out of order at %d", i)
		}
	}
}

// TestEviction: a container missing from its node's next inventory loses
// its history; other nodes' containers keep theirs; series whose node
// stops reporting go after the window; Reset empties the store.
func TestEviction(t *testing.T) {
	s := New(0)
	s.Record("pve1", t0, []Reading{reading(101, 1), reading(102, 1)})
	s.Record("pve2", t0, []Reading{reading(201, 1)})
	s.Record("pve1", t0.Add(5*time.Second), []Reading{reading(102, 2)})
	if h := s.History("pve1", 101, time.Time{}); h != nil {
		t.Fatalf("gone container kept %+v", h)
	}
	if h := s.History("pve1", 102, time.Time{}); len(h) != 2 {
		t.Fatalf("kept container: %+v", h)
	}
	if h := s.History("pve2", 201, time.Time{}); len(h) != 1 {
		t.Fatalf("other node's container: %+v", h)
	}
	// The same VMID coming back starts afresh.
	s.Record("pve1", t0.Add(10*time.Second), []Reading{reading(101, 3), reading(102, 3)})
	if h := s.History("pve1", 101, time.Time{}); len(h) != 1 || h[0].Mem != 3 {
		t.Fatalf("returning VMID: %+v", h)
	}
	// pve2 falls silent: its series goes once the window has passed.
	s.Record("pve1", t0.Add(Window+2*time.Minute), []Reading{reading(102, 4)})
	if h := s.History("pve2", 201, time.Time{}); h != nil {
		t.Fatalf("silent node's container kept %+v", h)
	}
	if st := s.Stats(); st.Series != 1 {
		t.Fatalf("stats after the sweep: %+v", st)
	}
	s.Reset()
	if st := s.Stats(); st.Series != 0 || st.Points != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

// TestBudget: with more containers than the budget gives full series,
// each keeps budget/series samples, never fewer than MinPoints, and the
// memory stays within the budget; containers beyond budget/MinPoints get
// no history.
func TestBudget(t *testing.T) {
	const budget = 6000 // 8 full series, or 100 of MinPoints
	s := New(budget)
	var rs []Reading
	for v := range 30 {
		rs = append(rs, reading(100+v, 0))
	}
	for i := range 1000 {
		s.Record("pve1", t0.Add(time.Duration(i)*time.Second), rs)
	}
	st := s.Stats()
	if st.Series != 30 || st.Points != 30*(budget/30) || st.Allocated > budget {
		t.Fatalf("30 series: %+v, want %d points each within %d", st, budget/30, budget)
	}
	if h := s.History("pve1", 100, time.Time{}); len(h) != budget/30 || h[len(h)-1].At != t0.Add(999*time.Second) {
		t.Fatalf("a series: %d samples", len(h))
	}
	// 150 containers on three nodes: 100 get MinPoints each, 50 none.
	for n := range 3 {
		var rs []Reading
		for v := range 50 {
			rs = append(rs, reading(100+v, 0))
		}
		for i := range 200 {
			s.Record(fmt.Sprintf("pve%d", n+1), t0.Add(1000*time.Second+time.Duration(i)*time.Second), rs)
		}
	}
	// One more round so every series has been cut to the current limit.
	for n := range 3 {
		var rs []Reading
		for v := range 50 {
			rs = append(rs, reading(100+v, 0))
		}
		s.Record(fmt.Sprintf("pve%d", n+1), t0.Add(1300*time.Second), rs)
	}
	st = s.Stats()
	if st.Series != budget/MinPoints || st.Points != budget || st.Allocated > budget || st.Refused == 0 {
		t.Fatalf("150 containers: %+v", st)
	}
	if h := s.History("pve3", 149, time.Time{}); h != nil {
		t.Fatalf("a container beyond the budget has %d samples", len(h))
	}
	// When containers go, the others' series may grow again.
	s.Record("pve2", t0.Add(1301*time.Second), nil)
	s.Record("pve3", t0.Add(1301*time.Second), nil)
	for i := range 700 {
		s.Record("pve1", t0.Add(1302*time.Second+time.Duration(i)*time.Second), rs[:10])
	}
	if st := s.Stats(); st.Series != 10 || st.Points != 10*(budget/10) {
		t.Fatalf("after the others went: %+v", st)
	}
}

// TestConcurrent runs records and reads side by side (for -race).
func TestConcurrent(t *testing.T) {
	s := New(10000)
	var wg sync.WaitGroup
	for n := range 4 {
		wg.Go(func() {
			node := fmt.Sprintf("pve%d", n)
			for i := range 500 {
				var rs []Reading
				for v := range 5 + i%7 {
					rs = append(rs, reading(100+v, uint64(i)))
				}
				s.Record(node, t0.Add(time.Duration(i)*time.Second), rs)
			}
		})
		wg.Go(func() {
			node := fmt.Sprintf("pve%d", n)
			for range 500 {
				h := s.History(node, 101, time.Time{})
				for i := 1; i < len(h); i++ {
					if !h[i].At.After(h[i-1].At) {
						t.Errorf("out of order")
						return
					}
				}
				_ = s.Stats()
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Allocated > 10000 {
		t.Fatalf("over the budget: %+v", st)
	}
}

// BenchmarkRecord: one inventory of 100 containers into full series.
func BenchmarkRecord(b *testing.B) {
	s := New(0)
	var rs []Reading
	for v := range 100 {
		rs = append(rs, reading(100+v, 0))
	}
	at := t0
	for b.Loop() {
		at = at.Add(5 * time.Second)
		s.Record("pve1", at, rs)
	}
}

// TestPointSize keeps the memory figures in the documentation true.
func TestPointSize(t *testing.T) {
	if got := unsafe.Sizeof(point{}); got != pointSize || pointSize != 72 {
		t.Fatalf("a point is %d bytes, pointSize says %d (docs/api.md says 72)", got, pointSize)
	}
}
