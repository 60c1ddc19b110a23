// Package agentpb is the Go code generated from proto/agent.proto: the
// agent protocol's messages and its gRPC client and server. Do not edit;
// run `make generate`.
package agentpb
