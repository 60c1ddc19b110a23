// Package server assembles one coordinator server: the cluster node (Raft
// and gossip), the operator API on --http-addr, and the first admin token.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/coordinator/webui"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/apps"
	pb "github.com/proximity-ve/proximity/proto/agentpb"

	"github.com/proximity-ve/proximity/coordinator/api"
	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/pki"
)

// AdminTokenFile is the file, in the data directory of the server that
// bootstrapped the cluster, that holds the first admin token.
const AdminTokenFile = "admin.token"

// Config is a server's configuration; the fields mirror the flags of
// `proximity-coordinator server`.
type Config struct {
	NodeID          string
	DataDir         string
	HTTPAddr        string
	GRPCAddr        string
	RaftAddr        string
	GossipAddr      string
	BootstrapExpect int
	Join            []string
	// ClusterKeyFile is the cluster key file (--cluster-key-file), read
	// at start and again by Reload. Keys, when set, are used instead (dev
	// mode and tests).
	ClusterKeyFile string
	Keys           cluster.Keys
	// TLSSANs are extra names for the API certificate issued from the
	// cluster CA (--tls-san); TLSCertFile and TLSKeyFile replace it with
	// the operator's own (re-read by Reload).
	TLSSANs                 []string
	TLSCertFile, TLSKeyFile string

	Timing   cluster.Timing
	Proposer proposer.Config
	// RequestTimeout bounds an API request including retries across
	// leader changes (default 15s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	LogOutput      io.Writer
	// NodeTTL and Heartbeat tune agent liveness (defaults 15s and 2s).
	NodeTTL, Heartbeat time.Duration
	// AgentCertTTL is the lifetime of node certificates (default 30 days).
	AgentCertTTL time.Duration
	// CatalogDir holds the catalog's YAML files ("": the starter catalog).
	CatalogDir string
	// CatalogRefresh is how often the leader fetches every catalog
	// source (0: only on reload).
	CatalogRefresh time.Duration
	// Now is the API's clock (default time.Now; tests drive it).
	Now func() time.Time
	// SessionTTL is how long a login's session lasts (default 12h).
	SessionTTL time.Duration
	// PasswordParams override argon2id's parameters (tests make them
	// cheap; default auth.DefaultParams).
	PasswordParams *auth.Params
	// AppPolicy overrides the apps' retry policy (tests shorten it).
	AppPolicy *apps.Policy
	// UpdateClock and UpdateEvery override the automatic updater's clock
	// and period (tests).
	UpdateClock func() time.Time
	UpdateEvery time.Duration
	// EventsHeartbeat overrides the events stream's heartbeat interval
	// (15s; tests shorten it).
	EventsHeartbeat time.Duration
}

// Server is a running coordinator server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	cl   *cluster.Cluster
	api  *api.API
	http *http.Server
	ln   net.Listener
	done chan struct{}
	tls  *apiTLS
	// bg ends the server's background work (writing ca.pem).
	bg     context.Context
	bgStop context.CancelFunc

	// started is closed once Start has built every part; the leader hook,
	// which the cluster may call at once, waits for it.
	started chan struct{}
	// tokenMu serializes settling the pending admin token file.
	tokenMu sync.Mutex

	agents *agentsvc.Service
	apps   *apps.Controller
	grpc   *grpc.Server
	gln    net.Listener
	gdone  chan struct{}
}

// Start starts a server and returns once it is listening.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), done: make(chan struct{}), started: make(chan struct{})}
	s.tls = &apiTLS{s: s}
	if len(cfg.Keys) == 0 {
		ks, err := cluster.LoadKeys(cfg.ClusterKeyFile)
		if err != nil {
			return nil, err
		}
		s.cfg.Keys, cfg.Keys = ks, ks
	}
	if err := s.tls.loadOperator(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	s.ln = ln
	gln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--grpc-addr: %w", err)
	}
	s.gln, s.gdone = gln, make(chan struct{})
	f := fsm.New(0)
	cl, err := cluster.Open(cluster.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, GossipAddr: cfg.GossipAddr,
		HTTPAddr: cfg.HTTPAddr, GRPCAddr: cfg.GRPCAddr, BootstrapExpect: cfg.BootstrapExpect, Join: cfg.Join,
		Keys: cfg.Keys, Timing: cfg.Timing, Proposer: cfg.Proposer, Logger: cfg.Logger, LogOutput: cfg.LogOutput,
		OnLeaderReady: s.onLeaderReady,
	}, f)
	if err != nil {
		ln.Close()
		gln.Close()
		return nil, err
	}
	s.cl = cl
	s.agents = agentsvc.New(agentsvc.Config{Backend: cl, Logger: s.log, TTL: cfg.NodeTTL, Heartbeat: cfg.Heartbeat, CertTTL: cfg.AgentCertTTL, NewID: api.NewID, Sealer: cl.Sealer})
	s.grpc = grpc.NewServer(s.agents.ServerOptions()...)
	pb.RegisterAgentServer(s.grpc, s.agents)
	go func() {
		defer close(s.gdone)
		if err := s.grpc.Serve(s.agents.LimitListener(gln)); err != nil {
			s.log.Error("grpc server", "err", err)
		}
	}()
	s.apps = apps.New(apps.Config{Backend: cl, Tasks: s.agents, Logger: s.log, Policy: cfg.AppPolicy, Wait: cfg.AppPolicy, NewID: api.NewID,
		UpdateClock: cfg.UpdateClock, UpdateEvery: cfg.UpdateEvery, ScheduleNow: cfg.Now})
	s.api = api.New(api.Config{Backend: cl, Logger: s.log, Registry: prometheus.NewRegistry(), RequestTimeout: cfg.RequestTimeout, EventsHeartbeat: cfg.EventsHeartbeat,
		Agents: s.agents, CatalogDir: cfg.CatalogDir, SessionTTL: cfg.SessionTTL, Now: cfg.Now, PasswordParams: cfg.PasswordParams, UI: webui.Handler()})
	cl.ServeForwarded(s.api)
	s.tls.loadSaved()
	s.bg, s.bgStop = context.WithCancel(context.Background())
	go s.writeCACert(s.bg)
	go s.settleWhenAdmin(s.bg)
	close(s.started)
	s.http = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Streams never go idle: they end when the server shuts down.
	s.http.RegisterOnShutdown(s.api.EndStreams)
	go func() {
		defer close(s.done)
		// HTTPS only: a plain HTTP request gets Go's 400 "Client sent an
		// HTTP request to an HTTPS server", never an answer.
		if err := s.http.Serve(tls.NewListener(ln, s.tls.config())); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	return s, nil
}

// Agents is the server's agent service.
func (s *Server) Agents() *agentsvc.Service { return s.agents }

// GRPCAddr is the address agents connect to.
func (s *Server) GRPCAddr() string { return s.gln.Addr().String() }

// stopGRPC ends agent streams; a short grace lets unary reports finish.
func (s *Server) stopGRPC(grace time.Duration) {
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.grpc.Stop()
	}
	<-s.gdone
}

// Cluster is the server's cluster node.
func (s *Server) Cluster() *cluster.Cluster { return s.cl }

// URL is the base URL of the server's API.
func (s *Server) URL() string { return "https://" + s.cfg.HTTPAddr }

// CACertPath is where this server writes the cluster CA's certificate.
func (s *Server) CACertPath() string { return filepath.Join(s.cfg.DataDir, CACertFile) }

// Reload re-reads the cluster key file and the operator's certificate
// files (SIGHUP). Nothing changes when either cannot be read or the new
// keys are refused.
func (s *Server) Reload() error {
	var errs []error
	if s.cfg.ClusterKeyFile != "" {
		ks, err := cluster.LoadKeys(s.cfg.ClusterKeyFile)
		if err == nil {
			err = s.cl.ReloadKeys(ks)
		}
		if err == nil {
			s.tls.resave()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster keys not reloaded: %w", err))
		}
	}
	if err := s.tls.loadOperator(); err != nil {
		errs = append(errs, fmt.Errorf("API certificate not reloaded: %w", err))
	}
	return errors.Join(errs...)
}

// AdminTokenPath is where this server writes the first admin token if it
// bootstraps the cluster.
func (s *Server) AdminTokenPath() string { return filepath.Join(s.cfg.DataDir, AdminTokenFile) }

// Shutdown stops the server: a leader first hands leadership to another
// voter, in-flight requests get until ctx ends, then the cluster node
// stops without leaving, so a restart rejoins.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.cl.HandOff(); err != nil {
		s.log.Warn("stopping without handing off leadership", "err", err)
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	<-s.done
	s.stopGRPC(time.Second)
	s.api.Close()
	s.bgStop()
	s.cl.Shutdown()
	return err
}

// Kill stops the server at once, like a crash that still closes files:
// connections are cut and nothing is handed over.
func (s *Server) Kill() {
	s.http.Close()
	<-s.done
	s.grpc.Stop()
	<-s.gdone
	s.api.Close()
	s.bgStop()
	s.cl.Shutdown()
}

// onLeaderReady makes sure the cluster has an admin: the first leader
// creates the admin token, writes it to <data-dir>/admin.token (0600), and
// stores only its hash through Raft.
//
// The secret is written to a pending file before it is proposed, so a
// crash between the commit and the rename cannot lose it. A server that
// holds a pending file, whether it leads or not, renames it into place
// once the cluster has an admin whose token is this one, and removes it
// once the cluster has another admin (settleWhenAdmin): the command of a
// leader that lost its term may still be committed by the next.
func (s *Server) onLeaderReady(ctx context.Context, cl *cluster.Cluster) {
	select {
	case <-s.started:
	case <-ctx.Done():
		return
	}
	go s.agents.Lead(ctx)
	go s.apps.Run(ctx)
	go s.ensureCatalog(ctx, cl)
	go s.refreshCatalog(ctx)
	go func() {
		for ctx.Err() == nil {
			err := s.agents.EnsureCA(ctx)
			if err == nil {
				return
			}
			s.log.Warn("create cluster CA", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	s.initAdmin(ctx, cl)
}

// refreshCatalog fetches every catalog source each CatalogRefresh while
// this server leads (counted from when it became leader), so that new
// versions are seen without a reload.
func (s *Server) refreshCatalog(ctx context.Context) {
	if s.cfg.CatalogRefresh <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.CatalogRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		out, err := s.api.RefreshCatalog(ctx)
		if err != nil {
			s.log.Warn("catalog refresh", "err", err)
			continue
		}
		for _, r := range out.Sources {
			if r.Error != "" {
				s.log.Warn("catalog source not fetched; its entries are kept", "source", r.Name, "err", r.Error)
			}
		}
		s.log.Info("catalog refreshed", "entries", out.Entries)
	}
}

// ensureCatalog loads the catalog into a cluster that has none yet.
func (s *Server) ensureCatalog(ctx context.Context, cl *cluster.Cluster) {
	var have bool
	cl.FSM().Read(func(st *fsm.State) { have = st.Catalog != nil })
	if have {
		return
	}
	fetch := api.BuiltinFetch(ctx, s.cfg.CatalogDir, time.Now())
	if fetch.Error != "" {
		s.log.Error("catalog not loaded", "err", fetch.Error)
		return
	}
	for _, p := range fetch.Problems {
		s.log.Warn("catalog entry refused", "file", p.File, "field", p.Field, "reason", p.Reason)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cl.Propose(pctx, fsm.Command{Type: fsm.CmdCatalogFetched, RequestID: api.NewID("catalog_"), CatalogFetched: fetch})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		s.log.Warn("catalog not loaded", "err", err)
		return
	}
	s.log.Info("catalog loaded", "entries", len(fetch.Entries), "source", fetch.From)
}

func (s *Server) initAdmin(ctx context.Context, cl *cluster.Cluster) {
	final := s.AdminTokenPath()
	pending := final + ".pending"
	var hasAdmin bool
	cl.FSM().Read(func(st *fsm.State) { hasAdmin = st.HasAdmin() })
	if hasAdmin {
		s.settlePending(cl, pending, final)
		return
	}
	secret := ""
	if b, err := os.ReadFile(pending); err == nil {
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		secret = api.NewTokenSecret()
		if err := writePrivate(pending, secret+"\n"); err != nil {
			s.log.Error("write pending admin token", "err", err)
			return
		}
	}
	hash := fsm.HashToken(secret)
	uid := api.NewID("usr_")
	cmd := fsm.Command{Type: fsm.CmdInitAdmin, RequestID: "init-admin/" + hash[:24], InitAdmin: &fsm.InitAdminCmd{
		User:  fsm.User{ID: uid, Name: "admin", Role: fsm.RoleAdmin, CreatedAt: time.Now()},
		Token: fsm.Token{ID: api.NewID("tok_"), UserID: uid, Hash: hash, CreatedAt: time.Now()},
	}}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Propose(pctx, cmd)
		cancel()
		if errors.Is(err, proposer.ErrNotLeader) {
			go s.settleWhenAdmin(s.bg)
			return
		}
		if err != nil {
			s.log.Warn("create admin token", "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err := res.Err(); err != nil {
			s.log.Info("admin exists already", "detail", err)
		}
		s.settlePending(cl, pending, final)
		return
	}
	go s.settleWhenAdmin(s.bg)
}

// settleWhenAdmin waits, while this server runs, until the cluster has an
// admin, then settles the pending admin token file if there is one.
func (s *Server) settleWhenAdmin(ctx context.Context) {
	final := s.AdminTokenPath()
	pending := final + ".pending"
	for {
		if _, err := os.Stat(pending); errors.Is(err, os.ErrNotExist) {
			return
		}
		changed := s.cl.FSM().Changed()
		var hasAdmin bool
		s.cl.FSM().Read(func(st *fsm.State) { hasAdmin = st.HasAdmin() })
		if hasAdmin {
			s.settlePending(s.cl, pending, final)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// settlePending renames the pending token file into place if its token is
// the one the cluster holds, and removes it otherwise.
func (s *Server) settlePending(cl *cluster.Cluster, pending, final string) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	b, err := os.ReadFile(pending)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Error("read pending admin token", "err", err)
		return
	}
	var ours bool
	cl.FSM().Read(func(st *fsm.State) { ours = st.HasTokenHash(fsm.HashToken(strings.TrimSpace(string(b)))) })
	if !ours {
		if err := os.Remove(pending); err != nil {
			s.log.Error("remove stale pending admin token", "err", err)
		}
		return
	}
	if err := os.Rename(pending, final); err != nil {
		s.log.Error("install admin token", "err", err)
		return
	}
	s.log.Info("admin token written", "path", final)
}

func writePrivate(p, content string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(content)
	serr := f.Sync()
	return errors.Join(werr, serr, f.Close())
}

// WaitAdminToken waits for the admin token file and returns the token.
func (s *Server) WaitAdminToken(ctx context.Context) (string, error) {
	for {
		b, err := os.ReadFile(s.AdminTokenPath())
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %s: %w", s.AdminTokenPath(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitCACert waits until this server has written <data-dir>/ca.pem and can
// serve HTTPS, and returns the file's path.
func (s *Server) WaitCACert(ctx context.Context) (string, error) {
	for {
		if _, err := os.Stat(s.CACertPath()); err == nil && s.agents.CA() != nil {
			return s.CACertPath(), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %s: %w", s.CACertPath(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NewJoinToken stores a single-use join token for node (any node when
// empty) and returns its text. It waits for the cluster CA.
func (s *Server) NewJoinToken(ctx context.Context, node string, ttl time.Duration) (string, error) {
	for s.agents.CAPin() == "" {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the cluster CA was not created: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	tok := pki.NewToken(s.agents.CAPin())
	now := time.Now()
	res, err := s.cl.Propose(ctx, fsm.Command{Type: fsm.CmdJoinToken, RequestID: api.NewID("jt_"), JoinToken: &fsm.JoinToken{
		ID: api.NewID("jtk_"), Hash: tok.Hash(), Node: node, CreatedAt: now, ExpiresAt: now.Add(ttl)}})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

// DevPasswordFile is where dev mode keeps the admin's password, in its
// data directory.
const DevPasswordFile = "admin.password"

// EnsureDevPassword gives the first admin a password (dev mode only): a
// new random one, kept in <data-dir>/admin.password (0600) so that a
// restart prints the same. It returns the admin's name and password.
func (s *Server) EnsureDevPassword(ctx context.Context) (name, password string, err error) {
	p := filepath.Join(s.cfg.DataDir, DevPasswordFile)
	var admin fsm.User
	s.cl.FSM().Read(func(st *fsm.State) {
		for _, u := range st.ListAllUsers() {
			if u.Role == fsm.RoleAdmin && (admin.ID == "" || u.CreatedAt.Before(admin.CreatedAt)) {
				admin = u
			}
		}
	})
	if admin.ID == "" {
		return "", "", errors.New("no admin yet")
	}
	if b, err := os.ReadFile(p); err == nil && admin.PasswordHash != "" {
		return admin.Name, strings.TrimSpace(string(b)), nil
	}
	password = auth.GeneratePassword()
	params := auth.DefaultParams
	if s.cfg.PasswordParams != nil {
		params = *s.cfg.PasswordParams
	}
	hash, err := auth.HashPassword(ctx, password, params)
	if err != nil {
		return "", "", err
	}
	res, err := s.cl.Propose(ctx, fsm.Command{Type: fsm.CmdSetPassword, RequestID: api.NewID("devpw_"),
		SetPassword: &fsm.SetPasswordCmd{UserID: admin.ID, Hash: hash}})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return "", "", fmt.Errorf("set the admin's password: %w", err)
	}
	if err := writePrivate(p, password+"\n"); err != nil {
		return "", "", err
	}
	return admin.Name, password, nil
}
