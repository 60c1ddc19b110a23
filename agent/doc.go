// Package agent is the Proximity node agent: it runs on every Proxmox node,
// does the Proxmox work locally (pct, vzdump, pveam and the node's own
// API) and takes its work from the coordinator over gRPC with mutual TLS.
//
// This version has the command line only; joining a cluster, the work
// stream and the Proxmox adapter are specified in docs/architecture.md and
// arrive with the agent protocol in proto/.
package agent
