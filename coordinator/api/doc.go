// Package api serves the operator API (/api/v1), health checks and
// Prometheus metrics over HTTP.
//
// Every route is declared once in the route table with its access level
// (public, any user, admin) and where it runs (here, or on the leader).
// Requests pass through one dispatcher that assigns a request ID, limits
// the body, authenticates, authorizes, and either serves the request or
// forwards it to the leader; no handler checks permissions itself.
//
// Forwarding is safe to retry: before a write leaves the server that
// received it, it gets an Idempotency-Key (unless the client gave one or a
// request_id), and every write becomes an FSM command whose request ID is
// that key. When the leader changes mid-request, the receiving server
// retries against the new leader with the same key, and the FSM's dedup
// table makes sure the write is applied at most once and answers with the
// first result. Reads on leader routes use the read-index protocol, so
// they are linearizable wherever they are sent.
//
// Every error is an RFC 9457 problem document with a request_id; 5xx
// bodies never carry internal error text, which goes to the log with the
// same request_id.
package api
