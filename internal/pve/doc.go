// Package pve is Proximity's Proxmox adapter: what the agent does on its
// node, behind one interface, Runtime.
//
// Local implements it on a real node: it runs pct, vzdump and pveam as
// child processes (own process group, output to files, a deadline on each)
// and reads the node's API with go-proxmox, decoding its answers
// tolerantly (vmid as number or string, missing or null counters). Proxmox
// reports failures as text (stderr with exit status 255, a task's exit
// status, an HTTP status line), and Classify turns the texts in the
// Proxmox reference notes into typed errors that callers branch on with
// errors.Is. A task that is already running for a VMID (started by an
// agent that died) is waited for by UPID instead of being started again.
// ExecStream is the one exception to output in files: a command in a
// container whose output is read line by line from a pipe as it comes
// (followed logs, a secret read that must not touch the disk), killed with
// its process group when its caller is done.
//
// The contract tests run Local unchanged against the simulator in
// internal/pvesim.
package pve
