package main

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured level.
type result struct {
	ok, errors int
	took       time.Duration
	lat        []time.Duration // sorted
}

func (r result) rate() float64 { return float64(r.ok) / r.took.Seconds() }

func (r result) p(q int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := len(r.lat) * q / 100
	if i >= len(r.lat) {
		i = len(r.lat) - 1
	}
	return r.lat[i]
}

// op makes one reservation; n is unique across all calls.
type op func(ctx context.Context, n int64) error

// drive runs clients concurrent loops of op for warm+dur and measures the
// last dur. Every call has its own deadline.
func drive(clients int, warm, dur time.Duration, next *atomic.Int64, do op) result {
	var (
		mu      sync.Mutex
		res     result
		measure atomic.Bool
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ok, errs := 0, 0
			for {
				select {
				case <-stop:
					mu.Lock()
					res.lat = append(res.lat, lat...)
					res.ok += ok
					res.errors += errs
					mu.Unlock()
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := do(ctx, next.Add(1))
				d := time.Since(start)
				cancel()
				if !measure.Load() {
					continue
				}
				if err != nil {
					errs++
					continue
				}
				ok++
				lat = append(lat, d)
			}
		}()
	}
	time.Sleep(warm)
	measure.Store(true)
	start := time.Now()
	time.Sleep(dur)
	measure.Store(false)
	res.took = time.Since(start)
	close(stop)
	wg.Wait()
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	return res
}
