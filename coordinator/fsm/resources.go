package fsm

import (
	"regexp"

	"github.com/proximity-ve/proximity/internal/problem"
)

// ResourceSettings are the defaults every deploy uses for what a catalog
// entry does not say: swap and the storage of the root disk.
type ResourceSettings struct {
	SwapMB  int    `json:"swap_mb"`
	Storage string `json:"storage"`
}

// DefaultResources is Proxmox's own default swap on its default thin pool.
func DefaultResources() ResourceSettings { return ResourceSettings{SwapMB: 512, Storage: "local-lvm"} }

var storageRE = regexp.MustCompile(`^[a-z][a-z0-9\-_.]*[a-z0-9]$`)

// Validate checks the settings.
func (r ResourceSettings) Validate() error {
	if r.SwapMB < 0 || r.SwapMB > 65536 {
		return problem.E(problem.Invalid, "swap_mb: %d outside 0-65536", r.SwapMB)
	}
	if !storageRE.MatchString(r.Storage) {
		return problem.E(problem.Invalid, "storage: %q is not a Proxmox storage ID", r.Storage)
	}
	return nil
}

// ResourceDefaults returns the settings in force.
func (s *State) ResourceDefaults() ResourceSettings {
	if s.Resources == nil {
		return DefaultResources()
	}
	return *s.Resources
}

func (s *State) setResources(r ResourceSettings) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.Resources = &r
	return nil
}
