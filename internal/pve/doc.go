// Package pve is Proximity's Proxmox adapter: what the agent does on its
// node through pct, vzdump, pveam and the node's own API.
//
// This version holds the error model: Proxmox reports failures as text
// (on stderr with exit status 255, or at the end of a task log), and
// Classify turns the texts listed in the Proxmox reference notes into typed
// errors that callers branch on with errors.Is. The Runtime interface and
// its implementations (the real adapter and the simulator) build on it.
package pve
