// Package cluster runs one coordinator server's share of the cluster: the
// Raft node (hashicorp/raft with a raft-boltdb log and stable store and
// file snapshots under the data directory) and gossip discovery
// (hashicorp/memberlist).
//
// # Forming a cluster
//
// Every server announces, in its memberlist metadata, its ID, its Raft,
// HTTP and gRPC addresses, its --bootstrap-expect value, a boot ID that
// names its data directory's incarnation, and whether it already belongs to
// a Raft cluster.
//
//   - A server with Raft state on disk never bootstraps: it rejoins with
//     its state.
//   - A server started alone (no --bootstrap-expect, no --join) bootstraps
//     a single-voter cluster.
//   - Servers started with --bootstrap-expect N wait until they see N
//     servers that all expect N and none of which is already in a cluster,
//     then each bootstraps the same configuration (the N servers sorted by
//     ID). Raft accepts identical bootstrap configurations on every server.
//   - Any other server waits to be added by the leader.
//
// # Membership
//
// The leader reconciles membership: every live server it sees over gossip
// that is not in the Raft configuration is added as a voter, a server whose
// Raft address changed is re-added, and each server's addresses are written
// to the FSM so every server can find every other's HTTP address. A server
// removed through the API is tombstoned by boot ID, so the same incarnation
// is never added back; restarting it with a fresh data directory adds it
// again. Servers that stop are not removed: they come back with their
// state.
//
// # Reads
//
// ReadIndex implements linearizable reads on the leader: it takes the
// commit index, confirms leadership with a quorum, and waits for the local
// FSM to apply up to that index.
package cluster
