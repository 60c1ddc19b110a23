package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/internal/taskspec"
)

// forwardsFile keeps the last applied set, so a restarted agent puts the
// node's forwards back before it hears from the cluster.
const forwardsFile = "forwards.json"

// reapplyEvery is how often the agent applies its set again, which heals
// a manual flush of the ruleset.
const reapplyEvery = 30 * time.Second

type forwarder struct {
	a   *Agent
	mu  sync.Mutex
	cur taskspec.ForwardsSpec
}

func (f *forwarder) path() string { return filepath.Join(f.a.cfg.DataDir, forwardsFile) }

// set applies spec unless it is older than the current set.
func (f *forwarder) set(ctx context.Context, spec taskspec.ForwardsSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if spec.Version < f.cur.Version {
		return nil
	}
	if err := f.a.cfg.Runtime.SetForwards(ctx, spec.Forwards); err != nil {
		return err
	}
	f.cur = spec
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return writeFile(f.path(), b, 0o600)
}

// loop applies the saved set at start and again every reapplyEvery.
func (f *forwarder) loop(ctx context.Context) {
	if b, err := os.ReadFile(f.path()); err == nil {
		var spec taskspec.ForwardsSpec
		if json.Unmarshal(b, &spec) == nil {
			f.mu.Lock()
			f.cur = spec
			f.mu.Unlock()
		}
	}
	for {
		f.mu.Lock()
		spec := f.cur
		f.mu.Unlock()
		if spec.Version > 0 {
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := f.set(actx, spec); err != nil {
				f.a.log.Warn("reapplying port forwards", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reapplyEvery):
		}
	}
}
