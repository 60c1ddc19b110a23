package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// Config configures one server.
type Config struct {
	NodeID          string
	DataDir         string
	RaftAddr        string
	GossipAddr      string
	HTTPAddr        string
	GRPCAddr        string
	BootstrapExpect int
	Join            []string
	// Keys is the cluster keyring from the cluster key file: it keys
	// gossip encryption, server-to-server TLS and the sealing of secrets
	// in Raft. Required.
	Keys Keys

	Timing   Timing
	Proposer proposer.Config
	Logger   *slog.Logger
	// LogOutput receives Raft's and memberlist's own logs.
	LogOutput io.Writer
	// Now is the clock the leader reads a non-voter's stabilization
	// against before it promotes it (default time.Now). Raft, gossip and
	// the TLS certificates run on real time.
	Now func() time.Time
	// OnLeaderReady runs (in its own goroutine) each time this server
	// becomes leader and has applied everything committed before; ctx ends
	// when leadership is lost. It may run before Open returns, so it gets
	// the cluster as an argument.
	OnLeaderReady func(ctx context.Context, c *Cluster)
}

// Timing holds the Raft and gossip timings.
type Timing struct {
	Heartbeat         time.Duration
	Election          time.Duration
	LeaderLease       time.Duration
	Commit            time.Duration
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// LocalGossip uses memberlist's loopback timings (fast failure
	// detection, for tests and dev).
	LocalGossip bool
	// Reconcile is how often the leader reconciles membership.
	Reconcile time.Duration
	// Stabilization is how long a new server must stay healthy as a
	// non-voter before the leader promotes it to voter.
	Stabilization time.Duration
}

// DefaultTiming returns production timings for a LAN.
func DefaultTiming() Timing {
	return Timing{
		Heartbeat: time.Second, Election: time.Second, LeaderLease: 500 * time.Millisecond,
		Commit: 50 * time.Millisecond, SnapshotInterval: 2 * time.Minute,
		SnapshotThreshold: 8192, TrailingLogs: 10240, Reconcile: 5 * time.Second,
		Stabilization: 10 * time.Second,
	}
}

// TestTiming returns timings for servers sharing one loopback machine.
func TestTiming() Timing {
	return Timing{
		Heartbeat: 400 * time.Millisecond, Election: 400 * time.Millisecond, LeaderLease: 200 * time.Millisecond,
		Commit: 10 * time.Millisecond, SnapshotInterval: 5 * time.Second,
		SnapshotThreshold: 1024, TrailingLogs: 1024, LocalGossip: true, Reconcile: 300 * time.Millisecond,
		Stabilization: time.Second,
	}
}

// Cluster is a running server's Raft node and gossip member.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	fsm    *fsm.FSM
	bootID string

	raft  *raft.Raft
	store *raftboltdb.BoltStore
	snaps raft.SnapshotStore
	trans *raft.NetworkTransport
	ml    *memberlist.Memberlist
	meta  *metaDelegate
	prop  *proposer.Proposer

	// Server-to-server security: the keyring in force, the TLS material
	// derived from it, the server port and the client over it.
	keysMu  sync.Mutex
	keys    atomic.Pointer[Keys]
	sealer  atomic.Pointer[secrets.Keyring] // derived from keys once per keyring
	tlsm    atomic.Pointer[tlsMaterial]
	port    *serverPort
	fwd     *http.Client
	fwdSrv  *http.Server
	gossKey *memberlist.Keyring
	health  map[string]time.Time // non-voters healthy since, leader only
	// forwarded is the handler of requests forwarded over the server
	// port (a forwardedHandler).
	forwarded atomicHandler

	liveMu sync.Mutex
	live   map[string]meta // live servers by ID, from gossip events
	// protocols is the last protocol each server announced over gossip,
	// kept when it leaves, under liveMu.
	protocols   map[string]int
	lead        leaderState
	leaderReady atomic.Bool
	events      chan struct{}

	stop     chan struct{}
	wg       sync.WaitGroup
	shutOnce sync.Once
}

// Open starts the server's Raft node and gossip member.
func Open(cfg Config, f *fsm.FSM) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := claimNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}
	bootID, err := loadOrCreate(filepath.Join(cfg.DataDir, "boot-id"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), fsm: f, bootID: bootID,
		events: make(chan struct{}, 1), stop: make(chan struct{}), live: map[string]meta{},
		protocols: map[string]int{}, health: map[string]time.Time{},
	}
	f.SetLogger(c.log)
	ks := append(Keys(nil), cfg.Keys...)
	c.keys.Store(&ks)
	c.sealer.Store(ks.Sealer())
	m, err := newTLSMaterial(cfg.NodeID, ks)
	if err != nil {
		return nil, err
	}
	c.tlsm.Store(m)
	c.fwd = c.newForwardClient()
	if err := c.openRaft(); err != nil {
		c.closeStores()
		return nil, err
	}
	if err := c.openGossip(); err != nil {
		c.Shutdown()
		return nil, err
	}
	c.wg.Add(3)
	go c.watchLeadership()
	go c.bootstrap()
	go c.joinLoop()
	return c, nil
}

func checkConfig(cfg *Config) error {
	var errs []string
	if cfg.NodeID == "" || strings.ContainsAny(cfg.NodeID, " /\\") {
		errs = append(errs, "--node-id: required, without spaces or slashes")
	}
	if cfg.DataDir == "" {
		errs = append(errs, "--data-dir: required")
	}
	for flag, addr := range map[string]string{"--raft-addr": cfg.RaftAddr, "--gossip-addr": cfg.GossipAddr, "--http-addr": cfg.HTTPAddr} {
		if err := routable(addr); err != nil {
			errs = append(errs, flag+": "+err.Error())
		}
	}
	if len(cfg.Keys) == 0 {
		errs = append(errs, "--cluster-key-file: required (every server of a cluster shares one key; make it with `proximity-coordinator keygen --out FILE`)")
	}
	if cfg.BootstrapExpect < 0 || cfg.BootstrapExpect > 7 {
		errs = append(errs, "--bootstrap-expect: must be 0 (off) to 7")
	}
	if len(errs) == 0 {
		// The announcement as openGossip makes it, at its longest (a
		// boot ID is 16 hex digits; a member says so).
		m := meta{ID: cfg.NodeID, Raft: cfg.RaftAddr, HTTP: cfg.HTTPAddr, GRPC: cfg.GRPCAddr, Gossip: cfg.GossipAddr,
			Expect: cfg.BootstrapExpect, Boot: strings.Repeat("0", 16), Member: true, Keys: cfg.Keys.IDs(), Protocol: fsm.ProtocolVersion}
		if err := m.fits(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// routable checks that addr is host:port with a host other servers can
// reach (not the unspecified address), since it is also advertised.
func routable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("%q is not host:port with a fixed port", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: give an address other servers can reach, not %s", addr, host)
	}
	return nil
}

// claimNodeID records the node ID in the data directory and refuses to
// open a directory that belongs to another ID.
func claimNodeID(dir, id string) error {
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(b)); got != id {
			return fmt.Errorf("data dir %s belongs to node %q, not %q", dir, got, id)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		return writeFileAtomic(p, []byte(id+"\n"), 0o600)
	default:
		return fmt.Errorf("read node id: %w", err)
	}
}

func loadOrCreate(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	return id, writeFileAtomic(p, []byte(id+"\n"), 0o600)
}

// writeFileAtomic writes a file through a temporary file and a rename, and
// syncs it, so a crash leaves the old or the new content.
func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (c *Cluster) openRaft() error {
	t := c.cfg.Timing
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.cfg.NodeID)
	rc.HeartbeatTimeout = t.Heartbeat
	rc.ElectionTimeout = t.Election
	rc.LeaderLeaseTimeout = t.LeaderLease
	rc.CommitTimeout = t.Commit
	rc.SnapshotInterval = t.SnapshotInterval
	rc.SnapshotThreshold = t.SnapshotThreshold
	rc.TrailingLogs = t.TrailingLogs
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	rc.Logger = hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Warn, Output: c.cfg.LogOutput,
	})

	dir := filepath.Join(c.cfg.DataDir, "raft")
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft store: %w", err)
	}
	c.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, rc.Logger)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	c.snaps = snaps
	adv, err := net.ResolveTCPAddr("tcp", c.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("--raft-addr: %w", err)
	}
	ln, err := net.Listen("tcp", c.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("--raft-addr: %w", err)
	}
	c.port = newServerPort(ln, c.serverTLS(), c.log)
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{c: c, ln: c.port.raft, adv: adv},
		MaxPool: 8, Timeout: 10 * time.Second, Logger: rc.Logger,
	})
	c.fwdSrv = &http.Server{
		Handler:           c.serverHandler(),
		ConnContext:       serverConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := c.fwdSrv.Serve(c.port.http); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			c.log.Error("server port http", "err", err)
		}
	}()
	trans := c.trans
	r, err := raft.NewRaft(rc, c.fsm, store, store, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	c.prop = proposer.New(r, c.cfg.Proposer)
	go func() {
		for {
			select {
			case leader := <-notify:
				c.leaderEvent(leader)
			case <-c.stop:
				return
			}
		}
	}()
	return nil
}

func (c *Cluster) closeStores() {
	if c.fwdSrv != nil {
		c.fwdSrv.Close()
	}
	if c.port != nil {
		c.port.Close()
	}
	if c.trans != nil {
		c.trans.Close()
	}
	if c.store != nil {
		c.store.Close()
	}
}

// Shutdown stops the server abruptly, as a crash would, except that files
// are closed: it does not leave the cluster, so a restart with the same
// data directory rejoins with its state.
func (c *Cluster) Shutdown() {
	c.shutOnce.Do(func() {
		close(c.stop)
		c.leaderReady.Store(false)
		if c.prop != nil {
			c.prop.Close()
		}
		if c.ml != nil {
			if err := c.ml.Shutdown(); err != nil {
				c.log.Error("gossip shutdown", "err", err)
			}
		}
		if c.raft != nil {
			if err := c.raft.Shutdown().Error(); err != nil {
				c.log.Error("raft shutdown", "err", err)
			}
		}
		c.wg.Wait()
		c.closeStores()
	})
}

// HandOff transfers leadership to another voter if this server leads and
// has one, so that a planned stop costs no election timeout. It returns
// once another server leads, or with an error when no transfer was
// possible; stopping is safe either way.
func (c *Cluster) HandOff() error {
	if c.raft == nil || c.raft.State() != raft.Leader {
		return nil
	}
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < 2 {
		return nil
	}
	c.leaderReady.Store(false)
	if err := c.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	c.log.Info("leadership handed off")
	return nil
}

// ID is this server's node ID.
func (c *Cluster) ID() string { return c.cfg.NodeID }

// BootID names this incarnation of the data directory.
func (c *Cluster) BootID() string { return c.bootID }

// FSM is the server's state machine.
func (c *Cluster) FSM() *fsm.FSM { return c.fsm }

// Raft is the server's Raft node.
func (c *Cluster) Raft() *raft.Raft { return c.raft }

// Propose submits a command through group commit (leader only). A command
// type that some server of the configuration does not know yet is refused
// (Unavailable) before it reaches the log: it would stop that server.
func (c *Cluster) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	if c.raft.State() != raft.Leader {
		return fsm.Result{}, proposer.ErrNotLeader
	}
	if fsm.ProtocolNeeded(cmd.Type) > fsm.BaseProtocol {
		cf := c.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fsm.Result{}, fmt.Errorf("%w: %w", proposer.ErrNotLeader, err)
		}
		if err := fsm.CheckProtocol(cmd.Type, c.serverProtocols(cf.Configuration().Servers)); err != nil {
			return fsm.Result{}, err
		}
	}
	return c.prop.Propose(ctx, cmd)
}

// serverProtocols is the protocol of each server of a configuration as
// this server knows it: its own, the last one each other server announced
// over gossip, or 0 for a server it has not heard from since it started.
func (c *Cluster) serverProtocols(servers []raft.Server) []fsm.ServerProtocol {
	out := make([]fsm.ServerProtocol, 0, len(servers))
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	for _, s := range servers {
		id := string(s.ID)
		p := c.protocols[id]
		if id == c.cfg.NodeID {
			p = fsm.ProtocolVersion
		}
		out = append(out, fsm.ServerProtocol{ID: id, Protocol: p})
	}
	return out
}

// ReadIndex makes the local FSM safe for a linearizable read. It returns
// once this server has confirmed with a quorum, after the call began, that
// it is still the leader, and has applied every entry committed before it
// became leader (the term-start barrier). Together these cover every
// acknowledged write: writes of earlier terms through the barrier, writes of
// this term because the leader acknowledges a write only after its own FSM
// has applied it. Entries committed but not yet applied were not
// acknowledged, so they are concurrent with the read and it may order
// itself before them. (Waiting for the commit index itself would not work:
// Raft's no-op, barrier and configuration entries never reach the FSM.)
func (c *Cluster) ReadIndex(ctx context.Context) error {
	if !c.leaderReady.Load() {
		return proposer.ErrNotLeader
	}
	if err := c.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", proposer.ErrNotLeader, err)
	}
	if !c.leaderReady.Load() {
		return proposer.ErrNotLeader
	}
	return ctx.Err()
}

// IsLeader reports whether this server is the leader and ready to serve.
func (c *Cluster) IsLeader() bool { return c.leaderReady.Load() }

// Ready reports whether a leader is known and this server has applied
// everything it knows to be committed.
func (c *Cluster) Ready() bool {
	if _, id := c.raft.LeaderWithID(); id == "" {
		return false
	}
	if c.raft.State() == raft.Leader && !c.leaderReady.Load() {
		return false
	}
	return c.raft.AppliedIndex() >= c.raft.CommitIndex()
}
