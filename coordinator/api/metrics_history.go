package api

import (
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/usage"
	"github.com/proximity-ve/proximity/internal/problem"
)

// metricsSample is one item of an app's metrics history. net_in and
// net_out are the container's byte counters as reported (they fall back
// when it restarts): rates are the differences of successive samples.
type metricsSample struct {
	At      time.Time `json:"at"`
	Status  string    `json:"status"`
	CPU     float64   `json:"cpu"`
	Mem     uint64    `json:"mem"`
	MaxMem  uint64    `json:"max_mem"`
	Disk    uint64    `json:"disk"`
	MaxDisk uint64    `json:"max_disk"`
	NetIn   uint64    `json:"net_in"`
	NetOut  uint64    `json:"net_out"`
}

// metricsRange parses the range parameter of an app's metrics: "" is no
// history (0), else a positive Go duration up to usage.Window.
func metricsRange(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > usage.Window {
		return 0, problem.E(problem.Invalid, "range: %q must be a positive duration up to 1h (5m, 15m, 1h)", s)
	}
	return d, nil
}

// metricsHistory is the app's container's samples of the last span,
// oldest first and never nil. Samples from before the app was created
// (another container that had its VMID) are left out.
func (a *API) metricsHistory(app fsm.App, span time.Duration) []metricsSample {
	out := []metricsSample{}
	if a.agents == nil || app.VMID == 0 {
		return out
	}
	since := a.now().Add(-span)
	if app.CreatedAt.After(since) {
		since = app.CreatedAt
	}
	for _, s := range a.agents.History(app.Node, app.VMID, since) {
		out = append(out, metricsSample{At: s.At, Status: s.Status, CPU: s.CPU, Mem: s.Mem, MaxMem: s.MaxMem,
			Disk: s.Disk, MaxDisk: s.MaxDisk, NetIn: s.NetIn, NetOut: s.NetOut})
	}
	return out
}
