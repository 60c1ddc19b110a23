// Package proto holds the agent protocol: agent.proto, the gRPC service
// between agents and coordinators (join with a CSR, the assignment stream
// with fencing tokens, batched reports). The generated Go code is in
// proto/agentpb, committed, and reproduced by `make generate`.
package proto

//go:generate protoc --proto_path=. --go_out=agentpb --go_opt=paths=source_relative --go-grpc_out=agentpb --go-grpc_opt=paths=source_relative agent.proto join.proto work.proto inventory.proto report.proto

import "time"

// Keepalive settings, shared by both ends so they agree: the agent pings
// an idle connection every KeepaliveTime and gives up after
// KeepaliveTimeout; the coordinator allows pings as often as
// KeepaliveMinTime (which must not exceed KeepaliveTime, or the server
// closes the connection with "too_many_pings").
const (
	KeepaliveTime    = 20 * time.Second
	KeepaliveTimeout = 10 * time.Second
	KeepaliveMinTime = 10 * time.Second
)

// LeaderTrailer is the trailer key in which a follower names the leader's
// gRPC address.
const LeaderTrailer = "proximity-leader"
