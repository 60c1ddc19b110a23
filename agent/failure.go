package agent

import (
	"errors"

	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// failureOf names a task's or live request's error for the coordinator:
// Proxmox's typed errors by their kind, a policy refusal as invalid,
// anything else as error.
func failureOf(err error) taskspec.Failure {
	for _, k := range []struct {
		err  error
		kind taskspec.Failure
	}{
		{pve.ErrExists, taskspec.FailExists}, {pve.ErrNotFound, taskspec.FailNotFound}, {pve.ErrLocked, taskspec.FailLocked},
		{pve.ErrNotRunning, taskspec.FailNotRunning}, {pve.ErrAlreadyRunning, taskspec.FailAlreadyRunning}, {pve.ErrRunning, taskspec.FailRunning},
		{pve.ErrTimeout, taskspec.FailTimeout}, {pve.ErrProtected, taskspec.FailProtected}, {pve.ErrUnsupported, taskspec.FailUnsupported},
		{pve.ErrInvalid, taskspec.FailInvalid},
	} {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return taskspec.FailError
}
