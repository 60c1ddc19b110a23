package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/internal/problem"
)

// Failed authentication is throttled per source address: a bucket of
// authFailBurst failures that refills at authFailRate a second. Once it
// is empty, a request whose token fails gets 429 with Retry-After instead
// of 401, at once and without the lookup. A valid token is checked first
// and never counted, so throttling slows guessing and nothing else.
const (
	authFailBurst = 10
	authFailRate  = 1
	// authFailPeers bounds the addresses tracked (see agentsvc.PeerLimiter).
	authFailPeers = 10_000
)

// authThrottle is one API's failed-authentication state.
type authThrottle struct {
	peers *agentsvc.PeerLimiter
	// logs keeps a flood of failures from flooding the log; suppressed
	// counts the lines it held back, reported with the next line.
	logs       *rate.Limiter
	suppressed atomic.Int64
}

func newAuthThrottle() *authThrottle {
	return &authThrottle{
		peers: agentsvc.NewPeerLimiter(authFailRate, authFailBurst, authFailPeers),
		logs:  rate.NewLimiter(1, 5),
	}
}

func (a *API) throttle() *authThrottle { return a.authFail }

// errThrottled is a request refused because its address has failed to
// authenticate too often; wait is how long until it may try again.
type errThrottled struct {
	wait time.Duration
	msg  string // "": too many failed authentications
}

func (e *errThrottled) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("too many failed authentications from this address; retry in %d s", retryAfter(e.wait))
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// checkToken authenticates the request's bearer token and sets rq.user.
// Failures are counted against the source address, and refused with
// errThrottled once it has failed too often.
func (a *API) checkToken(rq *request, token string) error {
	if a.lookupToken(rq, token) {
		return nil
	}
	th := a.throttle()
	remote := clientAddr(rq)
	if wait := th.peers.Wait(remote, time.Now()); wait > 0 {
		a.authFailed(rq, th, "throttled")
		return &errThrottled{wait: wait}
	}
	if a.lookupAfterCatchUp(rq, token) {
		return nil
	}
	if wait := th.peers.Allow(remote, time.Now()); wait > 0 {
		a.authFailed(rq, th, "throttled")
		return &errThrottled{wait: wait}
	}
	a.authFailed(rq, th, "refused")
	return problem.E(problem.Unauthenticated, "the bearer token is not valid")
}

// clientAddr is the address a request's failed authentications count
// against: the connection's peer, or, for a request another server
// forwarded over the server port, the client's address as that server
// saw it.
func clientAddr(rq *request) string {
	if rq.forwarded {
		if a := rq.r.Header.Get(hdrClientAddr); a != "" {
			return a
		}
	}
	return rq.r.RemoteAddr
}

// authFailed counts and logs a failed authentication: the address, never
// the token.
func (a *API) authFailed(rq *request, th *authThrottle, outcome string) {
	a.m.authFailures.WithLabelValues(outcome).Inc()
	if !th.logs.Allow() {
		th.suppressed.Add(1)
		return
	}
	a.log.Warn("authentication failed", "remote", agentsvc.PeerKey(clientAddr(rq)), "outcome", outcome,
		"method", rq.r.Method, "path", rq.r.URL.Path, "request_id", rq.id, "suppressed_before", th.suppressed.Swap(0))
}

// writeThrottled answers 429 in the one error format, with Retry-After.
func writeThrottled(w http.ResponseWriter, rq *request, e *errThrottled) bool {
	if e == nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", problem.ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.Itoa(retryAfter(e.wait)))
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(problem.Body{
		Type: "urn:proximity:problem:too-many-requests", Title: http.StatusText(http.StatusTooManyRequests),
		Status: http.StatusTooManyRequests, Detail: e.Error(), RequestID: rq.id,
	})
	return true
}

// asThrottled returns err's errThrottled, or nil.
func asThrottled(err error) *errThrottled {
	var e *errThrottled
	if errors.As(err, &e) {
		return e
	}
	return nil
}
