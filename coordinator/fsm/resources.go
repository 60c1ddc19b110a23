package fsm

import (
	"regexp"

	"github.com/proximity-ve/proximity/internal/problem"
)

// ResourceSettings are the defaults every deploy uses for what a catalog
// entry does not say: swap and the storage of the root disk; and the
// storage backups are written to.
type ResourceSettings struct {
	SwapMB  int    `json:"swap_mb"`
	Storage string `json:"storage"`
	// BackupStorage is where vzdump writes; empty is DefaultBackupStorage
	// (settings written before it existed have none).
	BackupStorage string `json:"backup_storage"`
}

// DefaultBackupStorage is Proxmox's own directory storage.
const DefaultBackupStorage = "local"

// DefaultResources is Proxmox's own default swap on its default thin
// pool, and backups on its default directory storage.
func DefaultResources() ResourceSettings {
	return ResourceSettings{SwapMB: 512, Storage: "local-lvm", BackupStorage: DefaultBackupStorage}
}

var storageRE = regexp.MustCompile(`^[a-z][a-z0-9\-_.]*[a-z0-9]$`)

// Validate checks the settings.
func (r ResourceSettings) Validate() error {
	if r.SwapMB < 0 || r.SwapMB > 65536 {
		return problem.E(problem.Invalid, "swap_mb: %d outside 0-65536", r.SwapMB)
	}
	if !storageRE.MatchString(r.Storage) {
		return problem.E(problem.Invalid, "storage: %q is not a Proxmox storage ID", r.Storage)
	}
	if r.BackupStorage != "" && !storageRE.MatchString(r.BackupStorage) {
		return problem.E(problem.Invalid, "backup_storage: %q is not a Proxmox storage ID", r.BackupStorage)
	}
	return nil
}

// ResourceDefaults returns the settings in force.
func (s *State) ResourceDefaults() ResourceSettings {
	if s.Resources == nil {
		return DefaultResources()
	}
	r := *s.Resources
	if r.BackupStorage == "" {
		r.BackupStorage = DefaultBackupStorage
	}
	return r
}

func (s *State) setResources(r ResourceSettings) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.Resources = &r
	return nil
}
