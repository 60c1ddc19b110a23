// Package proto holds the agent protocol: the gRPC service between agents
// and coordinators, its .proto sources and the generated Go code, which is
// committed and reproduced by `make generate`.
//
// The service (join with a CSR, the assignment stream with fencing tokens,
// batched reports) is specified in docs/architecture.md; its messages are
// added here together with the agent that speaks them.
package proto
