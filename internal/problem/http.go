package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ContentType is the media type of every error body (RFC 9457).
const ContentType = "application/problem+json"

// Body is the RFC 9457 problem document Proximity answers with.
type Body struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

// Status maps a kind to its HTTP status.
func Status(k Kind) int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict, Exhausted:
		return http.StatusConflict
	case Unauthenticated:
		return http.StatusUnauthorized
	case Permission:
		return http.StatusForbidden
	case Unavailable:
		return http.StatusServiceUnavailable
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Method:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// TypeURI is the problem type for a kind.
func TypeURI(k Kind) string { return "urn:proximity:problem:" + k.String() }

// typeURI is the problem type of err: its own Type if it names one (never
// for Internal errors), else its kind's.
func typeURI(k Kind, err error) string {
	if t := TypeOf(err); t != "" && k != Internal {
		return "urn:proximity:problem:" + t
	}
	return TypeURI(k)
}

// BodyFor builds the problem document for err. Internal errors never carry
// their text: the detail only points at the request ID, which leads to the
// server's log line.
func BodyFor(err error, requestID string) Body {
	k := KindOf(err)
	status := Status(k)
	detail := "internal error; see the server log for request " + requestID
	if k != Internal {
		var pe *Error
		if errors.As(err, &pe) && pe.Detail != "" {
			detail = pe.Detail
		} else {
			detail = http.StatusText(status)
		}
	}
	return Body{
		Type:      typeURI(k, err),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		RequestID: requestID,
	}
}

// Write answers with the problem document for err.
func Write(w http.ResponseWriter, err error, requestID string) {
	b := BodyFor(err, requestID)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if b.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(1))
	}
	if b.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="proximity"`)
	}
	w.WriteHeader(b.Status)
	// The connection is the only place this could fail, and the status is
	// already sent; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(b)
}
