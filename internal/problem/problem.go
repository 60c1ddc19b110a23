// Package problem is Proximity's one error type. Every error that can reach a
// caller carries a stable Kind; the Kind is mapped once, at the edge, to an
// HTTP status and an RFC 9457 problem+json body (and, later, to gRPC codes).
package problem

import (
	"errors"
	"fmt"
)

// Kind classifies an error for callers that branch on it and for the edge
// that maps it to a status. The numeric values are stored in the Raft log
// (inside deduplicated results), so they are append-only: never renumber.
type Kind int

// The kinds. Internal is the zero value so that an unclassified error is
// never mistaken for a client error.
const (
	Internal        Kind = 0
	Invalid         Kind = 1 // the request is malformed or fails validation (400)
	NotFound        Kind = 2 // the thing does not exist or is not the caller's (404)
	Conflict        Kind = 3 // the request collides with current state (409)
	Exhausted       Kind = 4 // a pool (VMIDs, ports, IPs) has no free entry (409)
	Unauthenticated Kind = 5 // no or unknown credentials (401)
	Permission      Kind = 6 // authenticated but not allowed (403)
	Unavailable     Kind = 7 // no leader, shutting down, try again (503)
	TooLarge        Kind = 8 // request body over the limit (413)
	Method          Kind = 9 // method not allowed on the path (405)
)

var kindNames = map[Kind]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not-found",
	Conflict:        "conflict",
	Exhausted:       "exhausted",
	Unauthenticated: "unauthenticated",
	Permission:      "permission",
	Unavailable:     "unavailable",
	TooLarge:        "too-large",
	Method:          "method-not-allowed",
}

// String returns the kind's stable slug, used in problem type URIs.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind-%d", int(k))
}

// Error is an error with a Kind. Detail is safe to show to the caller; Err,
// if set, is the underlying cause and is never shown for Internal errors.
// Type, if set, is a slug that names the problem more precisely than its
// Kind ("quota-exceeded"); it becomes the problem document's type, while
// the Kind still decides the status and what callers branch on.
type Error struct {
	Kind   Kind
	Detail string
	Err    error
	Type   string
}

// E builds an *Error with a formatted detail.
func E(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error of the given kind around a cause.
func Wrap(kind Kind, err error, detail string) *Error {
	return &Error{Kind: kind, Detail: detail, Err: err}
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Detail != "":
		return e.Detail + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Detail
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return Internal
}

// TypeOf returns the Type of the first *Error in err's chain, or "".
func TypeOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Type
	}
	return ""
}

// Is reports whether err carries the given kind.
func Is(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }
