package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// Backend is what the API needs from the server's cluster node;
// *cluster.Cluster implements it.
type Backend interface {
	ID() string
	IsLeader() bool
	Ready() bool
	Leader() (id, httpAddr string, ok bool)
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	ReadIndex(ctx context.Context) error
	FSM() *fsm.FSM
	Info() (cluster.Info, error)
	// Forward sends a request to the leader over the authenticated
	// server port.
	Forward(req *http.Request) (*http.Response, error)
	// WaitApplied waits until the other servers have applied index.
	WaitApplied(ctx context.Context, index uint64) error
	// CatchUp waits until this server has applied what the leader had
	// applied when asked (at once on the leader).
	CatchUp(ctx context.Context) error
	// Sealer seals and opens the secrets kept in Raft (TOTP seeds, OIDC
	// client secrets) under the cluster key.
	Sealer() *secrets.Keyring
	RemoveServer(ctx context.Context, id, requestID string) error
}

// Config configures the API.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// Registry receives the API's metrics; /metrics serves it.
	Registry *prometheus.Registry
	// RequestTimeout bounds a request, including retries across leader
	// changes. Default 15s.
	RequestTimeout time.Duration
	// Now returns the time stamped on new records. Default time.Now.
	Now func() time.Time
	// Agents serves node heartbeats and the CA pin (nil: no agents).
	Agents Agents
	// CatalogDir is where catalog reload reads files ("": the starter
	// catalog built into the binary).
	CatalogDir string
	// SessionTTL is how long a login's session lasts (default 12h).
	SessionTTL time.Duration
	// PasswordParams are argon2id's parameters for new password hashes
	// (default auth.DefaultParams).
	PasswordParams *auth.Params
	// EventsHeartbeat is the interval of the events stream's heartbeat
	// comment (default 15s); MaxStreams and MaxStreamsPerUser bound the
	// open streams (default 256 and 8).
	EventsHeartbeat               time.Duration
	MaxStreams, MaxStreamsPerUser int
	// UI, when set, serves the paths outside the API's that it has: the
	// web dashboard (package webui).
	UI UI
}

// UI is the web dashboard as the API mounts it.
type UI interface {
	http.Handler
	// Serves reports whether the dashboard answers path: a file of its
	// build, or one of its own pages. Any other path is a 404 problem.
	Serves(path string) bool
}

// API is the HTTP handler.
type API struct {
	b          Backend
	log        *slog.Logger
	timeout    time.Duration
	now        func() time.Time
	mux        *http.ServeMux
	routes     []*route
	m          *metrics
	agents     Agents
	catalogDir string
	audit      *auditor

	sessionTTL     time.Duration
	passwordParams auth.Params
	logins         *loginThrottle
	authFail       *authThrottle
	lastUsed       lastUsedTimes
	dummyOnce      sync.Once
	dummyHash      string
	// oidc caches single sign-on providers and used states (oidc.go).
	oidc oidcClient
	// streams bounds and ends the open event streams (events.go).
	streams         *streamLimits
	eventsHeartbeat time.Duration
	// settingsMu serializes PATCHes of settings on this leader, so two
	// patches of different fields do not lose each other (settings.go).
	settingsMu sync.Mutex
	// placing serializes placement on the leader: a deploy chooses its
	// node and proposes while it holds the one slot (placement.go).
	placing chan struct{}
	ui      UI
}

// New builds the handler.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	a := &API{
		b: cfg.Backend, log: cfg.Logger, timeout: cfg.RequestTimeout, now: cfg.Now, agents: cfg.Agents, catalogDir: cfg.CatalogDir,
		mux: http.NewServeMux(), placing: make(chan struct{}, 1), ui: cfg.UI,
	}
	a.sessionTTL, a.passwordParams, a.logins, a.authFail = cfg.SessionTTL, auth.DefaultParams, newLoginThrottle(), newAuthThrottle()
	if a.sessionTTL <= 0 {
		a.sessionTTL = auth.DefaultSessionTTL
	}
	if cfg.PasswordParams != nil {
		a.passwordParams = *cfg.PasswordParams
	}
	a.streams, a.eventsHeartbeat = newStreamLimits(cfg.MaxStreams, cfg.MaxStreamsPerUser), cfg.EventsHeartbeat
	if a.eventsHeartbeat <= 0 {
		a.eventsHeartbeat = defaultEventsHeartbeat
	}
	a.m = newMetrics(cfg.Registry, cfg.Backend)
	a.audit = newAuditor(a, cfg.Registry)
	a.routes = a.table()
	a.register()
	a.mux.HandleFunc(auditIngestPath, a.ingestAudit)
	a.mux.Handle("GET /metrics", a.withToken(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	return a
}

// ServeHTTP implements http.Handler. No panic of a handler escapes it
// (recover.go).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer a.recoverOutside(w, r)
	a.mux.ServeHTTP(w, r)
}

// Close releases the API's resources.
func (a *API) Close() {
	a.streams.end()
	if a.audit != nil {
		a.audit.close()
	}
}

// withToken lets through only requests with a valid bearer token (of any
// role): Prometheus scrapes /metrics with one.
func (a *API) withToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &request{r: r, id: NewID("req_"), ctx: r.Context()}
		w.Header().Set(hdrRequestID, rq.id)
		token := bearer(r)
		if token == "" {
			a.fail(w, rq, problem.E(problem.Unauthenticated, "%s needs an Authorization: Bearer token", r.URL.Path))
			return
		}
		if err := a.checkToken(rq, token); err != nil {
			a.fail(w, rq, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}
