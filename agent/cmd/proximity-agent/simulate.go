//go:build simulate

package main

import (
	"log/slog"

	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// A build with -tags simulate (tests, bench/agents) can run against a
// simulated node (--simulate); the packaged agent cannot and links no
// simulator.
func init() {
	// The simulated node runs this binary as pct, vzdump and pveam.
	pvesim.RunAsTool()
	simulated = func(dataDir, node string) (pve.Runtime, func(), error) {
		sim, err := simnode.Start(dataDir, node)
		if err != nil {
			return nil, nil, err
		}
		slog.Info("simulated Proxmox node", "api", sim.Server.URL())
		return sim.Runtime, func() { _ = sim.Close() }, nil
	}
}
