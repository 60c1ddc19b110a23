package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Headers between servers and to clients.
const (
	hdrForwarded   = "X-Proximity-Forwarded"
	hdrClientAddr  = "X-Proximity-Client-Addr"
	hdrNotLeader   = "X-Proximity-Not-Leader"
	hdrRequestID   = "X-Request-ID"
	hdrIdempotency = "Idempotency-Key"
	maxBody        = 1 << 20
)

// request is one API call as handlers see it.
type request struct {
	r         *http.Request
	ctx       context.Context
	id        string // request ID, in every problem document and log line
	key       string // idempotency key: the FSM request ID of a write
	body      []byte
	user      fsm.User
	forwarded bool
	// auditActor and auditTargets are the audit log's hooks: the
	// authentication step or a handler may set the actor (a session, a
	// login's user) and add target IDs; auditNote is what the leader
	// said about a request this server forwarded (see audit.go).
	auditActor   fsm.AuditActor
	auditTargets []string
	auditNote    string
	// token is the token or session the request authenticated with;
	// viaCookie says it came in the session cookie, not a header.
	token     fsm.Token
	viaCookie bool
	// setCookies are sent with the answer (login, logout), and with a
	// refusal too.
	setCookies []*http.Cookie
	// redirect, when set, is the Location of an answer without a body
	// (single sign-on, oidc.go).
	redirect string
	// w is the answer's writer, for streaming routes only: a streaming
	// handler writes its answer itself and returns status streamed.
	w http.ResponseWriter
	// secret is the token or session secret this request mints, made once
	// and kept across the retries of its write (see mintSecret).
	secret string
}

// mintSecret returns the secret this request gives out, made by fresh the
// first time. Only its hash enters Raft, so a write retried on this
// server after an unknown outcome (a replay of the same request ID) can
// still answer the secret whose hash the first attempt stored.
func (rq *request) mintSecret(fresh func() string) string {
	if rq.secret == "" {
		rq.secret = fresh()
	}
	return rq.secret
}

// minted reports whether the state holds a token of this secret: a
// replayed token write answers the secret only if it is the one stored.
func (a *API) minted(secret string) bool {
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { ok = s.HasTokenHash(fsm.HashToken(secret)) })
	return ok
}

// streamed is the status a streaming handler returns once it has written
// its answer itself (see sse.go).
const streamed = -1

// NewID returns prefix followed by 96 random bits in hex.
func NewID(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; if it ever does, IDs would
		// collide, which is worse than stopping.
		panic("crypto/rand: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// decode reads the JSON body strictly: unknown fields, a field named in
// another case or given twice (at the top level), trailing data and
// wrong types are errors that name the field.
func (rq *request) decode(v any) error {
	body := bytes.TrimSpace(rq.body)
	if len(body) == 0 {
		return problem.E(problem.Invalid, "body: a JSON object is required")
	}
	if body[0] != '{' {
		// [], null, "x", 3: say what is wanted, not what Go could not fill.
		return problem.E(problem.Invalid, "body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(rq.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return problem.E(problem.Invalid, "%s: must be %s", te.Field, te.Type)
		case errors.As(err, &se):
			return problem.E(problem.Invalid, "body: malformed JSON at byte %d", se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return problem.E(problem.Invalid, "body: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return problem.E(problem.Invalid, "body: %v", err)
	}
	// Anything but white space after the object, a closing bracket too
	// (which dec.More does not count as more).
	if _, err := dec.Token(); err != io.EOF {
		return problem.E(problem.Invalid, "body: unexpected data after the JSON object")
	}
	return exactKeys(rq.body, v)
}

// exactKeys refuses what encoding/json lets through into a struct: a
// field named in another case ("Role" for "role") and a field given twice
// (the last would win), at the object's top level.
// jsonFields adds the JSON names of struct type t's fields to names, true
// for those encoding/json fills: exported and not "-", with the fields of
// an embedded struct without a name of its own promoted as json promotes
// them.
func jsonFields(t reflect.Type, names map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, names)
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = names[name] || (f.IsExported() && name != "-")
	}
}

func exactKeys(body []byte, v any) error {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]bool{}
	jsonFields(t, names)
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return problem.E(problem.Invalid, "body: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return problem.E(problem.Invalid, "body: %v", err)
		}
		key, _ := tok.(string)
		if !names[key] {
			return problem.E(problem.Invalid, "body: unknown field %q", key)
		}
		if seen[key] {
			return problem.E(problem.Invalid, "body: field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return problem.E(problem.Invalid, "body: %v", err)
		}
	}
	return nil
}

// commandID is the FSM request ID for a write: the client's request_id if
// the body had one, else the idempotency key.
func (rq *request) commandID(fromBody string) string {
	if fromBody != "" {
		return fromBody
	}
	return rq.key
}

// sessionCookie is the session secret a browser sent, if any.
func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// serve runs one request through authentication, authorization and, for
// leader routes, the forward-and-retry loop.
func (a *API) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	start := time.Now()
	// Only a request that came over the server port (mutual TLS under
	// the cluster key) may say it was forwarded; the header is ignored on
	// the public port.
	_, fromServer := cluster.FromServer(r.Context())
	rq := &request{r: r, forwarded: fromServer && r.Header.Get(hdrForwarded) != ""}
	rq.id = r.Header.Get(hdrRequestID)
	if !rq.forwarded || validate.RequestID("", rq.id) != nil {
		rq.id = NewID("req_")
	}
	w.Header().Set(hdrRequestID, rq.id)
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	rq.ctx = ctx
	rw := &statusWriter{ResponseWriter: w}
	if rt.stream {
		rq.w = rw
	}
	defer func() { a.m.observe(rt.name, r.Method, rw.status, time.Since(start)) }()
	// The audit middleware: after the answer, never in its way.
	defer func() { a.auditRequest(rq, rt, rw.status) }()
	// Deferred last, so it runs first: metrics and audit see the 500.
	defer a.recoverPanic(rw, rq)

	if r.Body != nil {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			a.fail(rw, rq, problem.E(problem.TooLarge, "body: larger than %d bytes or unreadable", maxBody))
			return
		}
		rq.body = body
	}
	token := bearer(r)
	if token == "" && rt.access != public {
		token, rq.viaCookie = sessionCookie(r), true
	}
	if rt.access != public && token == "" {
		a.fail(rw, rq, problem.E(problem.Unauthenticated, "an Authorization: Bearer token or a session is required"))
		return
	}
	if rq.viaCookie && !safeMethod(r.Method) && !rq.forwarded {
		// A browser sends the cookie by itself: an unsafe request must
		// also prove it comes from the page (the CSRF token, which only
		// the page can read) and from its origin.
		if !auth.CheckCSRF(token, r.Header.Get(auth.CSRFHeader)) || !auth.SameOrigin(r) {
			a.fail(rw, rq, problem.E(problem.Permission, "a request with a session cookie needs the %s header of its session and the API's own origin", auth.CSRFHeader))
			return
		}
	}
	if k := r.Header.Get(hdrIdempotency); k != "" {
		if err := validate.RequestID(hdrIdempotency, k); err != nil {
			a.fail(rw, rq, err)
			return
		}
		rq.key = k
	}
	if rt.where == local {
		a.respond(rw, rq, a.runHere(rq, rt, token))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && rq.key == "" {
		// Fix the write's identity before it can be retried anywhere.
		rq.key = NewID("idem_")
	}
	backoff := 10 * time.Millisecond
	for {
		if a.b.IsLeader() {
			out := a.runHere(rq, rt, token)
			if !retryable(out.err) {
				a.respond(rw, rq, out)
				return
			}
			if rq.forwarded {
				a.notLeader(rw, rq)
				return
			}
		} else if rq.forwarded {
			a.notLeader(rw, rq)
			return
		} else if a.forward(rw, rq) {
			return
		}
		select {
		case <-ctx.Done():
			err := problem.E(problem.Unavailable, "no leader answered within %s; retry (writes: with the same Idempotency-Key or request_id)", a.timeout)
			a.fail(rw, rq, err)
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 500*time.Millisecond)
		}
	}
}

type outcome struct {
	status int
	body   any
	err    error
}

// runHere authenticates, authorizes and runs the handler on this server.
func (a *API) runHere(rq *request, rt *route, token string) outcome {
	if rt.access != public {
		if err := a.checkToken(rq, token); err != nil {
			return outcome{err: err}
		}
		if rt.access == adminOnly && rq.user.Role != fsm.RoleAdmin {
			return outcome{err: problem.E(problem.Permission, "%s %s needs the admin role", rt.method, rt.pattern)}
		}
		// A user reaches only its own record; another's is not found, so
		// users cannot be enumerated.
		if rt.access == selfOrAdmin && rq.user.Role != fsm.RoleAdmin && rq.r.PathValue("id") != rq.user.ID {
			return outcome{err: problem.E(problem.NotFound, "user %s not found", rq.r.PathValue("id"))}
		}
	}
	if rt.where == leader && (rq.r.Method == http.MethodGet || rq.r.Method == http.MethodHead) {
		if err := a.b.ReadIndex(rq.ctx); err != nil {
			return outcome{err: err}
		}
	}
	status, body, err := rt.h(rq)
	return outcome{status, body, err}
}

// lookupAfterCatchUp looks again for a token this server did not know. A
// follower may not yet have applied a token the leader just created, so a
// follower catches up with the leader's applied index (one question to the
// leader) and looks again, within followerAuthWait; a token it still does
// not know is refused then, at once for a forged one rather than after a
// fixed wait. The leader knows every token already.
func (a *API) lookupAfterCatchUp(rq *request, token string) bool {
	if a.b.IsLeader() {
		return false
	}
	ctx, cancel := context.WithTimeout(rq.ctx, followerAuthWait)
	defer cancel()
	if err := a.b.CatchUp(ctx); err != nil {
		// No leader to ask: replication may still bring the token.
		for ctx.Err() == nil {
			if a.lookupToken(rq, token) {
				return true
			}
			select {
			case <-ctx.Done():
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	return a.lookupToken(rq, token)
}

// lookupToken authenticates a token or session secret in the local FSM:
// it must exist, be unexpired and belong to an enabled user.
func (a *API) lookupToken(rq *request, secret string) bool {
	var id fsm.Identity
	var ok bool
	now := a.now()
	a.b.FSM().Read(func(s *fsm.State) { id, ok = s.AuthenticateAt(secret, now) })
	if ok {
		rq.user, rq.token = id.User, id.Token
		a.lastUsed.touch(id.Token.ID, now)
	}
	return ok
}

// followerAuthWait bounds how long a follower waits for an unknown token
// to be replicated to it: a few heartbeats.
const followerAuthWait = 1500 * time.Millisecond

func retryable(err error) bool {
	return errors.Is(err, proposer.ErrNotLeader) || errors.Is(err, proposer.ErrUnknownOutcome) || errors.Is(err, proposer.ErrClosed)
}

func (a *API) notLeader(w http.ResponseWriter, rq *request) {
	w.Header().Set(hdrNotLeader, "true")
	a.fail(w, rq, problem.E(problem.Unavailable, "this server is not the leader"))
}

func (a *API) respond(w http.ResponseWriter, rq *request, out outcome) {
	a.noteCreated(w, rq, out)
	for _, c := range rq.setCookies {
		http.SetCookie(w, c)
	}
	if out.status == streamed && out.err == nil {
		return
	}
	if out.err != nil {
		if retryable(out.err) {
			out.err = problem.Wrap(problem.Unavailable, out.err, "leadership changed during the request; retry (writes: with the same Idempotency-Key or request_id)")
		}
		a.fail(w, rq, out.err)
		return
	}
	if rq.redirect != "" {
		w.Header().Set("Location", rq.redirect)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(out.status)
		return
	}
	if out.status == http.StatusNoContent {
		w.WriteHeader(out.status)
		return
	}
	if raw, ok := out.body.(rawAnswer); ok {
		w.Header().Set("Content-Type", raw.contentType)
		w.Header().Set("Cache-Control", raw.cacheControl)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
		w.WriteHeader(out.status)
		_, _ = w.Write(raw.data)
		return
	}
	writeJSON(w, out.status, out.body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		// Headers are sent; the client sees a truncated body.
		return
	}
}

// fail answers with a problem document; internal errors are logged with
// their cause and the request ID, and answered without it.
func (a *API) fail(w http.ResponseWriter, rq *request, err error) {
	if rq == nil {
		rq = &request{id: NewID("req_")}
		w.Header().Set(hdrRequestID, rq.id)
	}
	if writeThrottled(w, rq, asThrottled(err)) || writeTooManyStreams(w, rq, asStreams(err)) {
		return
	}
	k := problem.KindOf(err)
	if problem.Status(k) >= 500 && k != problem.Unavailable {
		a.log.Error("request failed", "request_id", rq.id, "err", err)
	} else {
		a.log.Debug("request refused", "request_id", rq.id, "kind", k.String(), "err", err)
	}
	problem.Write(w, err, rq.id)
}

// forward relays the request to the leader. It returns false, having
// written nothing, when the leader is unknown or unreachable or is no
// longer the leader; the caller retries.
func (a *API) forward(w http.ResponseWriter, rq *request) bool {
	id, _, ok := a.b.Leader()
	if !ok || id == a.b.ID() {
		return false
	}
	// The request's deadline bounds the forward until the leader starts
	// a stream (text/event-stream), which lasts as long as the client.
	fctx, fcancel := context.WithCancel(rq.r.Context())
	defer fcancel()
	bounded := context.AfterFunc(rq.ctx, fcancel)
	req, err := http.NewRequestWithContext(fctx, rq.r.Method, "http://leader"+rq.r.URL.RequestURI(), bytes.NewReader(rq.body))
	if err != nil {
		return false
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", "Origin"} {
		if v := rq.r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if rq.viaCookie {
		// The session was checked for CSRF here; the leader takes it as
		// a bearer secret.
		req.Header.Set("Authorization", "Bearer "+sessionCookie(rq.r))
	}
	if c, err := rq.r.Cookie(oidcStateCookie); err == nil {
		// The single sign-on callback's state (oidc.go), its only cookie.
		req.AddCookie(c)
	}
	if rq.key != "" {
		req.Header.Set(hdrIdempotency, rq.key)
	}
	req.Header.Set(hdrRequestID, rq.id)
	req.Header.Set(hdrForwarded, a.b.ID())
	req.Header.Set(hdrClientAddr, clientAddr(rq))
	resp, err := a.b.Forward(req)
	if err != nil {
		a.log.Debug("forward to leader", "leader", id, "request_id", rq.id, "err", err)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && bounded() {
		rq.auditNote = resp.Header.Get(hdrAudit)
		relaySSE(w, resp.Body)
		return true
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || (resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(hdrNotLeader) != "") {
		return false
	}
	rq.auditNote = resp.Header.Get(hdrAudit)
	for _, h := range []string{"Content-Type", "Cache-Control", "Retry-After", "WWW-Authenticate", "Allow", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Flush for
// streams, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush sends what is buffered (streams); it counts as an answer.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// relaySSE passes a leader's event stream on to the client as it comes:
// each read is written and flushed at once. It ends when either side
// does.
func relaySSE(w http.ResponseWriter, body io.Reader) {
	s := startSSE(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if s.write(buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
