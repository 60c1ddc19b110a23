package fsm

import (
	"math"

	"github.com/proximity-ve/proximity/internal/problem"
)

// Placement strategies.
const (
	PlaceSpread = "spread" // the node with the most memory free after the app
	PlacePack   = "pack"   // the node with the least memory free that still fits
)

// Bounds of the overcommit factors.
const (
	MaxMemoryOvercommit = 4.0
	MaxCPUOvercommit    = 16.0
)

// PlacementSettings choose the node of a deploy that names none and bound
// what a node takes (coordinator/placement). Overcommit factors multiply
// a node's memory and CPUs: 1 is none.
type PlacementSettings struct {
	Strategy         string  `json:"strategy"`
	MemoryOvercommit float64 `json:"memory_overcommit"`
	CPUOvercommit    float64 `json:"cpu_overcommit"`
}

// DefaultPlacement spreads, does not overcommit memory, and lets four
// cores of apps share one CPU.
func DefaultPlacement() PlacementSettings {
	return PlacementSettings{Strategy: PlaceSpread, MemoryOvercommit: 1, CPUOvercommit: 4}
}

// Validate checks the strategy and that each factor is a number from 1
// to its cap.
func (p PlacementSettings) Validate() error {
	if p.Strategy != PlaceSpread && p.Strategy != PlacePack {
		return problem.E(problem.Invalid, "strategy: %q must be spread or pack", p.Strategy)
	}
	for _, f := range []struct {
		name     string
		v, limit float64
	}{{"memory_overcommit", p.MemoryOvercommit, MaxMemoryOvercommit}, {"cpu_overcommit", p.CPUOvercommit, MaxCPUOvercommit}} {
		if math.IsNaN(f.v) || f.v < 1 || f.v > f.limit {
			return problem.E(problem.Invalid, "%s: %v must be 1 to %v", f.name, f.v, f.limit)
		}
	}
	return nil
}

// PlacementPolicy returns the settings in force.
func (s *State) PlacementPolicy() PlacementSettings {
	if s.Placement == nil {
		return DefaultPlacement()
	}
	return *s.Placement
}

func (s *State) setPlacement(p PlacementSettings) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s.Placement = &p
	return nil
}
