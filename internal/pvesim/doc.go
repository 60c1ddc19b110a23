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
// Long operations are workers: they hold the container's lock (create,
// backup, snapshot, ...) outside the state lock while they run, so other
// commands see "CT is locked (x)". A worker whose process died shows as
// "unexpected status", as Proxmox shows it.
//
// Implemented: `pvesim init`, `pvesim serve` (the HTTPS API subset, see
// API), `pvesim fault` (latency, task time, transient failures, hangs,
// crashes, string VMIDs; see Faults) and `pvesim take` (a VMID used behind
// Proximity's back); pct list, status, config, create, restore, start,
// stop, shutdown, reboot, destroy, clone, set, snapshot, delsnapshot,
// listsnapshot, rollback, unlock, exec (with the deploy flow's commands
// and docker compose, whose logs follow a deterministic timeline: logs.go)
// and push; vzdump; and pveam update,
// available, list and download.
package pvesim
