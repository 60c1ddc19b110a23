// Package proto holds the agent protocol: agent.proto, the gRPC service
// between agents and coordinators (join with a CSR, the assignment stream
// with fencing tokens, batched reports, and the live channel). The
// generated Go code is in proto/agentpb, committed, and reproduced by
// `make generate`.
//
// # The live channel
//
// Live is a bidirectional stream that each agent keeps open to the leader,
// beside its Work stream, for requests that must not go through Raft: an
// app's own logs (too large and too frequent for the replicated log) and
// the values of its .env file (secrets, which the coordinator never
// stores). The agent opens it and sends a LiveReply that carries only its
// node name, which must be its certificate's; a follower answers
// FAILED_PRECONDITION with the leader in the trailer, like Work, and the
// agent reconnects with backoff. The leader then sends LiveRequests:
//
//   - app_logs (vmid, LogsArgs): `docker compose logs` of the app's
//     project, with timestamps, tail 1-5000 lines, since an RFC 3339 time
//     or a duration, and follow;
//   - read_env (vmid, EnvArgs): the values of the named variables of the
//     app's .env file, and nothing else of the file;
//   - cancel (id): the caller of request id went away; the agent stops it
//     (it kills the command's process group) and answers it with end.
//
// The agent answers each request with LiveReply messages of the same id:
// chunks of data (whole log lines) or values, and last one with end set,
// which carries error and error_kind when the request failed and
// truncated when a bound cut it short. The bounds: an answer that does
// not follow is at most 1 MiB and ends within 10 s; a followed one ends
// after 1 h; each node runs at most a few requests at once. Both ends
// enforce them. The node's policy admits live requests only on
// containers Proximity made (the managed tag), reads only, and only the
// app's .env inside its directory. The stream closes when the node is
// removed or the server stops leading; requests in flight then fail.
package proto

//go:generate protoc --proto_path=. --go_out=agentpb --go_opt=paths=source_relative --go-grpc_out=agentpb --go-grpc_opt=paths=source_relative agent.proto join.proto work.proto inventory.proto report.proto live.proto

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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

// ErrorDomain and ReasonNotLeader name, in a status's ErrorInfo detail,
// the FailedPrecondition a follower answers to a call only the leader
// serves: callers test for it with IsNotLeader, never by the message.
const (
	ErrorDomain     = "proximity"
	ReasonNotLeader = "NOT_LEADER"
)

// NotLeader is the error a follower answers to a call only the leader
// serves.
func NotLeader() error {
	st := status.New(codes.FailedPrecondition, "not the leader")
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonNotLeader, Domain: ErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// IsNotLeader reports whether err is NotLeader's, as received over gRPC.
func IsNotLeader(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		return false
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Domain == ErrorDomain && ei.Reason == ReasonNotLeader {
			return true
		}
	}
	return false
}
