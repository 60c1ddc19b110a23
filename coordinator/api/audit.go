package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// The audit log.
//
// The dispatcher records, after a request is answered, every request
// with an unsafe method (POST, PUT, PATCH, DELETE), every request
// refused with 401, 403 or 429, whatever its method, and every request
// of a route that names an audit action (a read of secrets), with that
// action. Exactly one server
// records a request: the one the client sent it to, which knows the
// client's address and the final status. A leader that runs a request
// forwarded by a follower does not record it; it sends the actor and the
// created ID back to the follower in the hdrAudit response header, which
// the follower never passes on to the client.
//
// Records never block or fail a request: they go into a bounded queue
// (auditQueue) and one goroutine per server proposes them in batches of
// at most auditBatch, at least every auditFlushEvery. A follower sends its
// batches to the leader over the server port (auditIngestPath, accepted
// only from another server). When the queue is full, or a batch finds no
// leader within auditSendTimeout, the records are dropped and counted in
// proximity_audit_dropped_total, and a warning is logged (rate-limited).
// Records without an actor (bad or missing credentials, failed logins)
// are limited per source address (auditAnonRate a second, bursts of
// auditAnonBurst): a flood of refused requests cannot flood Raft or push
// the records of real users out of the log's retention.
// A batch carries a fresh request ID that survives its retries, so the
// FSM's dedup table never applies it twice.
const (
	auditQueue       = 10_000
	auditBatch       = 100
	auditFlushEvery  = 200 * time.Millisecond
	auditSendTimeout = 10 * time.Second
	auditIngestPath  = "/internal/v1/audit"
	hdrAudit         = "X-Proximity-Audit"
	auditAnonRate    = 1
	auditAnonBurst   = 20
	auditAnonPeers   = 10_000
)

// auditNote is what a leader tells the forwarding server about a request
// it ran: who made it and what it created.
type auditNote struct {
	Actor   fsm.AuditActor `json:"actor"`
	Targets []string       `json:"targets,omitempty"`
}

// auditor queues and sends one server's audit records.
type auditor struct {
	a    *API
	q    chan fsm.AuditRecord
	stop chan struct{}
	done chan struct{}
	// The sender starts with the first record (an API built only to
	// list its routes runs none) and stops once, in close.
	startOnce sync.Once
	// stopping is cancelled by close, so that a batch waiting for a
	// leader does not hold up a server that is stopping.
	stopping context.Context
	cancel   context.CancelFunc
	stopOnce sync.Once
	started  bool
	dropped  *prometheus.CounterVec
	logs     *rate.Limiter
	anon     *agentsvc.PeerLimiter
}

func newAuditor(a *API, reg *prometheus.Registry) *auditor {
	au := &auditor{
		a: a, q: make(chan fsm.AuditRecord, auditQueue), stop: make(chan struct{}), done: make(chan struct{}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proximity_audit_dropped_total",
			Help: "Audit records dropped: the queue was full, no leader took them in time, or an address sent too many refused requests.",
		}, []string{"reason"}),
		logs: rate.NewLimiter(0.2, 1),
		anon: agentsvc.NewPeerLimiter(auditAnonRate, auditAnonBurst, auditAnonPeers),
	}
	au.stopping, au.cancel = context.WithCancel(context.Background())
	reg.MustRegister(au.dropped)
	return au
}

// add queues a record without waiting.
func (au *auditor) add(r fsm.AuditRecord) {
	au.startOnce.Do(func() {
		au.started = true
		go au.run()
	})
	select {
	case au.q <- r:
	default:
		au.drop(1, "queue_full")
	}
}

func (au *auditor) drop(n int, reason string, err ...any) {
	au.dropped.WithLabelValues(reason).Add(float64(n))
	if au.logs.Allow() {
		au.a.log.Warn("audit records dropped", append([]any{"records", n, "reason", reason}, err...)...)
	}
}

func (au *auditor) close() {
	au.startOnce.Do(func() {}) // no sender starts after this
	au.stopOnce.Do(func() {
		close(au.stop)
		au.cancel()
	})
	if au.started {
		<-au.done
	}
}

func (au *auditor) run() {
	defer close(au.done)
	tick := time.NewTicker(auditFlushEvery)
	defer tick.Stop()
	// A batch keeps its request ID until it is sent or dropped, so a
	// retry is never applied twice.
	var batch []fsm.AuditRecord
	var id string
	// flush sends the batch; one cut short by close is kept for the
	// last try.
	flush := func(parent context.Context, timeout time.Duration) {
		if len(batch) > 0 && au.send(parent, id, batch, timeout) {
			batch, id = nil, ""
		}
	}
	for {
		select {
		case r := <-au.q:
			if id == "" {
				id = NewID("audit_")
			}
			batch = append(batch, r)
			if len(batch) >= auditBatch {
				flush(au.stopping, auditSendTimeout)
			}
		case <-tick.C:
			flush(au.stopping, auditSendTimeout)
		case <-au.stop:
			// Stopping: a batch cut short, then what is queued, get one
			// short try each.
			flush(context.Background(), time.Second)
			batch, id = nil, NewID("audit_")
		drain:
			for len(batch) < auditQueue {
				select {
				case r := <-au.q:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			flush(context.Background(), time.Second)
			return
		}
	}
}

// send proposes one batch on the leader, or hands it to the leader from a
// follower, retrying across leader changes until timeout. It returns
// false, having dropped nothing, when parent was cancelled (stopping).
func (au *auditor) send(parent context.Context, id string, batch []fsm.AuditRecord, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	backoff := 20 * time.Millisecond
	for {
		var err error
		if au.a.b.IsLeader() {
			err = au.a.proposeAudit(ctx, id, batch)
		} else {
			err = au.forward(ctx, id, batch)
		}
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return false
			}
			au.drop(len(batch), "no_leader", "err", err)
			return true
		case <-time.After(backoff):
			backoff = min(backoff*2, time.Second)
		}
	}
}

type auditBatchJSON struct {
	RequestID string            `json:"request_id"`
	Records   []fsm.AuditRecord `json:"records"`
}

func (au *auditor) forward(ctx context.Context, id string, batch []fsm.AuditRecord) error {
	body, err := json.Marshal(auditBatchJSON{RequestID: id, Records: batch})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://leader"+auditIngestPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := au.a.b.Forward(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusNoContent {
		return problem.E(problem.Unavailable, "leader answered %d", resp.StatusCode)
	}
	return nil
}

func (a *API) proposeAudit(ctx context.Context, id string, batch []fsm.AuditRecord) error {
	res, err := a.b.Propose(ctx, fsm.Command{Type: fsm.CmdAudit, RequestID: id,
		Audit: &fsm.AuditCmd{Records: batch, Now: a.now().UTC()}})
	if err != nil {
		return err
	}
	return res.Err()
}

// ingestAudit takes a follower's batch on the leader. It answers only
// requests that came over the server port.
func (a *API) ingestAudit(w http.ResponseWriter, r *http.Request) {
	if _, ok := cluster.FromServer(r.Context()); !ok || r.Method != http.MethodPost {
		a.fail(w, nil, problem.E(problem.NotFound, "no route for %s", r.URL.Path))
		return
	}
	rq := &request{r: r, id: NewID("req_"), ctx: r.Context()}
	var in auditBatchJSON
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4*maxBody))
	if err == nil {
		err = json.Unmarshal(raw, &in)
	}
	if err != nil || validate.RequestID("request_id", in.RequestID) != nil || len(in.Records) > auditQueue {
		a.fail(w, rq, problem.E(problem.Invalid, "body: not an audit batch"))
		return
	}
	if !a.b.IsLeader() {
		a.notLeader(w, rq)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	if err := a.proposeAudit(ctx, in.RequestID, in.Records); err != nil {
		if retryable(err) {
			a.notLeader(w, rq)
			return
		}
		a.fail(w, rq, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// audited reports whether a request with this method and final status
// goes into the audit log.
func audited(method string, status int) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
	}
	return true
}

// actor is who made the request: what the authentication step or a
// handler put in rq.auditActor, or else the authenticated user and the
// credential of the bearer token.
func (a *API) actor(rq *request) fsm.AuditActor {
	if rq.auditActor != (fsm.AuditActor{}) || rq.user.ID == "" {
		return rq.auditActor
	}
	act := fsm.AuditActor{UserID: rq.user.ID, Name: rq.user.Name}
	switch {
	case rq.token.ID == "":
	case rq.token.Kind == fsm.TokenSession:
		act.SessionID = rq.token.ID
	default:
		act.TokenID = rq.token.ID
	}
	return act
}

// noteCreated adds the ID of what a successful create answered with to
// the request's targets, and, on a leader running a forwarded request,
// tells the forwarding server the actor and targets. It runs before the
// answer is written.
func (a *API) noteCreated(w http.ResponseWriter, rq *request, out outcome) {
	if out.err == nil && (out.status == http.StatusCreated || out.status == http.StatusAccepted) {
		if id := createdID(out.body); id != "" {
			rq.auditTargets = append(rq.auditTargets, id)
		}
	}
	if rq.forwarded {
		if b, err := json.Marshal(auditNote{Actor: a.actor(rq), Targets: rq.auditTargets}); err == nil {
			w.Header().Set(hdrAudit, string(b))
		}
	}
}

// createdID is the "id" of a create's answer: the ID field of a struct
// or the "id" key of a map of strings.
func createdID(body any) string {
	if m, ok := body.(map[string]string); ok {
		return m["id"]
	}
	v := reflect.ValueOf(body)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// auditRequest is the dispatcher's audit middleware: it runs once a
// request has been answered.
func (a *API) auditRequest(rq *request, rt *route, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	if rq.forwarded || !(audited(rq.r.Method, status) || rt.audit != "") || a.audit == nil {
		return
	}
	rec := fsm.AuditRecord{
		Time: a.now().UTC(), Actor: a.actor(rq), Source: clientAddr(rq), Method: rq.r.Method,
		Route: rt.method + " " + rt.pattern, Targets: pathTargets(rq.r, rt.pattern), Status: status, RequestID: rq.id,
		Action: rt.audit,
	}
	targets := rq.auditTargets
	if rq.auditNote != "" {
		// The leader ran it: its actor and created IDs are the truth.
		var n auditNote
		if json.Unmarshal([]byte(rq.auditNote), &n) == nil {
			rec.Actor, targets = n.Actor, n.Targets
		}
	}
	for _, t := range targets {
		if t != "" && !contains(rec.Targets, t) {
			rec.Targets = append(rec.Targets, t)
		}
	}
	if rec.Actor == (fsm.AuditActor{}) && a.audit.anon.Allow(rec.Source, time.Now()) > 0 {
		a.audit.drop(1, "unauthenticated_rate")
		return
	}
	a.audit.add(rec)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// pathTargets is the values of the pattern's path parameters, in order.
func pathTargets(r *http.Request, pattern string) []string {
	out := []string{}
	for rest := pattern; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return out
		}
		name := strings.TrimSuffix(rest[i+1:i+j], "...")
		if v := r.PathValue(name); v != "" {
			out = append(out, v)
		}
		rest = rest[i+j+1:]
	}
}

// listAudit answers GET /api/v1/audit.
func (a *API) listAudit(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	f := fsm.AuditFilter{Actor: q.Get("actor"), Target: q.Get("target"), Action: q.Get("action")}
	if len(f.Action) > 200 {
		return 0, nil, problem.E(problem.Invalid, "action: at most 200 characters")
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return 0, nil, problem.E(problem.Invalid, "%s: %q is not an RFC 3339 time", p.name, v)
			}
			*p.t = t
		}
	}
	out := page[fsm.AuditRecord]{Items: []fsm.AuditRecord{}, Page: pg, PerPage: per}
	a.b.FSM().Read(func(s *fsm.State) {
		items, total := s.ListAudit(f, pg, per)
		out.Total = total
		out.Items = append(out.Items, items...)
	})
	return http.StatusOK, out, nil
}

// auditPolicyJSON is the retention on the wire: max_age is a Go duration
// ("2160h0m0s").
type auditPolicyJSON struct {
	MaxRecords int    `json:"max_records"`
	MaxAge     string `json:"max_age"`
}

func (a *API) getAuditPolicy(rq *request) (int, any, error) {
	var p fsm.AuditPolicy
	a.b.FSM().Read(func(s *fsm.State) { p = s.AuditRetention() })
	return http.StatusOK, auditPolicyJSON{MaxRecords: p.MaxRecords, MaxAge: p.MaxAge.String()}, nil
}

func (a *API) putAuditPolicy(rq *request) (int, any, error) {
	var in auditPolicyJSON
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	age, err := time.ParseDuration(in.MaxAge)
	if err != nil {
		return 0, nil, problem.E(problem.Invalid, "max_age: %q is not a duration such as 2160h", in.MaxAge)
	}
	p := fsm.AuditPolicy{MaxRecords: in.MaxRecords, MaxAge: age}
	if err := p.Validate(); err != nil {
		return 0, nil, err
	}
	cmd := fsm.Command{Type: fsm.CmdSetAuditPolicy, RequestID: rq.key, SetAuditPolicy: &fsm.SetAuditPolicyCmd{Policy: p, Now: a.now().UTC()}}
	if _, err := a.propose(rq, cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, auditPolicyJSON{MaxRecords: p.MaxRecords, MaxAge: p.MaxAge.String()}, nil
}
