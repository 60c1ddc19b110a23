// Package agent is the Proximity node agent: it runs on every Proxmox node,
// does the Proxmox work locally through internal/pve (pct, vzdump, pveam
// and the node's own API) and takes its work from the coordinator cluster
// over gRPC with mutual TLS.
//
// It joins with a single-use token that pins the cluster CA, keeps its key
// and certificate in its data directory and renews the certificate before
// it expires. It keeps one work stream open on the leader (following
// leader changes), executes each assignment idempotently under its fencing
// token, and reports heartbeats, inventory, log lines and results in
// batches. Beside it, it keeps a Live stream open on the leader and
// answers requests that do not go through Raft, an app's own logs and the
// values of its .env (live.go). Every task and live request is first
// checked against the node's own policy (Policy), which the cluster cannot
// change. See docs/agent.md.
package agent
