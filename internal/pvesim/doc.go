// Package pvesim is a simulated Proxmox VE node for tests and dev mode.
//
// Its state lives in a directory (PVESIM_DIR) as one JSON document guarded
// by an exclusive file lock, so several processes (the pct command line, an
// API server, a test) share it safely. Run as `pct` (through a symlink of
// that name) it behaves as Proxmox's pct for the subset Proximity uses: the
// same options (-opt and --opt, bare booleans), positional-argument errors,
// "400 Parameter verification failed." messages, error texts, output
// formats and exit codes (255 on failure) as the reference notes describe.
// Long operations are tasks with UPIDs and task logs ending in "TASK OK" or
// "TASK ERROR: msg", run synchronously as the CLI does.
//
// This version implements `pvesim init`; pct list, status, config, create,
// start, stop, shutdown, destroy, set, snapshot, delsnapshot, listsnapshot
// and rollback; and pveam update, available, list and
// download. vzdump, the other pct commands, the HTTPS API and the
// switchable faults are still to come.
package pvesim
