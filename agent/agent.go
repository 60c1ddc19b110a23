package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// Config configures an agent.
type Config struct {
	Node         string
	Coordinators []string
	JoinToken    string
	DataDir      string
	Runtime      pve.Runtime
	Version      string
	Logger       *slog.Logger
	// Concurrency bounds the tasks run at once (default 4).
	Concurrency int
	// InventoryEvery is how often the full inventory is sent (default 5s).
	InventoryEvery time.Duration
	// StopGrace is how long Run waits for running tasks when it is asked
	// to stop (default 1m). Tasks still running then go on in their own
	// processes; the next agent waits for them by UPID.
	StopGrace time.Duration
	// Policy is the node's own limit on the tasks it runs (the zero value
	// is DefaultPolicy). See Policy.Check.
	Policy Policy
	// AdvertiseAddr is the address people reach this node's apps at (an
	// IP address or a DNS name). Empty: the local address of the agent's
	// connection to the coordinator.
	AdvertiseAddr string
}

// Agent runs one node's work.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	id      *identity
	servers *serverList

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn
	// localIP is the local address of the last connection made to a
	// coordinator: the node's address when none is configured.
	localIP atomic.Value // string

	after     uint64 // work stream position
	exec      *executor
	fw        *forwarder
	rep       *reporter
	live      *live
	heartbeat time.Duration
}

// New prepares an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Node == "" || cfg.DataDir == "" || cfg.Runtime == nil || len(cfg.Coordinators) == 0 {
		return nil, errors.New("agent: node, data dir, runtime and a coordinator are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.InventoryEvery == 0 {
		cfg.InventoryEvery = 5 * time.Second
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = time.Minute
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger.With("node", cfg.Node),
		id:      &identity{dir: cfg.DataDir, node: cfg.Node},
		servers: newServerList(filepath.Join(cfg.DataDir, serversFile), cfg.Coordinators),
		conns:   map[string]*grpc.ClientConn{}, heartbeat: 2 * time.Second,
	}
	a.rep = newReporter(a)
	a.exec = newExecutor(a)
	a.fw = &forwarder{a: a}
	a.live = newLive(a)
	return a, nil
}

// Run joins if the node has no identity yet, then works until ctx ends.
// It returns ErrJoinRefused when the join token is refused.
func (a *Agent) Run(ctx context.Context) error {
	ok, err := a.id.load()
	if err != nil {
		return err
	}
	if !ok {
		if a.cfg.JoinToken == "" {
			return fmt.Errorf("%w: the node has not joined and no --join-token was given", ErrJoinRefused)
		}
		if err := a.join(ctx); err != nil {
			return err
		}
	}
	defer a.closeConns()
	// The reporter outlives ctx until the running tasks have ended, so
	// their results are delivered.
	repCtx, stopReporter := context.WithCancel(context.WithoutCancel(ctx))
	a.exec.mu.Lock()
	a.exec.stopping = false // a Run after a stopped one takes tasks again
	a.exec.mu.Unlock()
	var wg sync.WaitGroup
	for _, loop := range []struct {
		ctx context.Context
		fn  func(context.Context)
	}{{ctx, a.workLoop}, {repCtx, a.rep.loop}, {ctx, a.renewLoop}, {ctx, a.fw.loop}, {ctx, a.live.loop}} {
		wg.Add(1)
		go func() { defer wg.Done(); loop.fn(loop.ctx) }()
	}
	<-ctx.Done()
	a.log.Info("stopping: waiting for running tasks", "grace", a.cfg.StopGrace)
	if !a.exec.waitFor(a.cfg.StopGrace) {
		a.log.Warn("tasks still running at the end of the grace period; they go on, and the next start waits for them")
	}
	stopReporter()
	wg.Wait()
	return nil
}

func (a *Agent) conn(addr string) (*grpc.ClientConn, error) {
	a.connMu.Lock()
	defer a.connMu.Unlock()
	if c, ok := a.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(a.id.tlsConfig())),
		grpc.WithContextDialer(a.dial),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: proto.KeepaliveTime, Timeout: proto.KeepaliveTimeout, PermitWithoutStream: true}),
	)
	if err != nil {
		return nil, err
	}
	a.conns[addr] = c
	return c, nil
}

// dial connects to a coordinator and notes the local address it
// connects from.
func (a *Agent) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok && ta.IP != nil {
		a.localIP.Store(ta.IP.String())
	}
	return c, nil
}

// advertiseAddr is the address the heartbeat reports: the configured
// one, else the address this node reaches the coordinator from.
func (a *Agent) advertiseAddr() string {
	if a.cfg.AdvertiseAddr != "" {
		return a.cfg.AdvertiseAddr
	}
	ip, _ := a.localIP.Load().(string)
	return ip
}

func (a *Agent) closeConns() {
	a.connMu.Lock()
	defer a.connMu.Unlock()
	for k, c := range a.conns {
		c.Close()
		delete(a.conns, k)
	}
}

// call runs a unary call on the leader: it starts with the preferred
// server, follows a follower's leader hint, and moves on to the next known
// server when one does not answer. Each attempt has a deadline; the whole
// call gives up after a few rounds.
func (a *Agent) call(ctx context.Context, fn func(ctx context.Context, c pb.AgentClient, opts ...grpc.CallOption) error) error {
	var err error
	for i := 0; i < 3*len(a.servers.list())+3; i++ {
		addr := a.servers.pick(0)
		conn, cerr := a.conn(addr)
		if cerr != nil {
			return cerr
		}
		var trailer metadata.MD
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = fn(actx, pb.NewAgentClient(conn), grpc.Trailer(&trailer))
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !a.redirect(err, trailer, addr) {
			return err
		}
	}
	return err
}

// redirect decides where to go after a failed call: to the leader a
// follower named, or to the next server. It reports whether a retry makes
// sense.
func (a *Agent) redirect(err error, trailer metadata.MD, addr string) bool {
	switch status.Code(err) {
	case codes.FailedPrecondition:
		if l := first(trailer.Get(proto.LeaderTrailer)); l != "" && l != addr {
			a.servers.prefer(l)
			return true
		}
		if !proto.IsNotLeader(err) {
			return false
		}
		fallthrough
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		l := a.servers.list()
		if len(l) > 1 {
			a.servers.prefer(l[1]) // rotate
		}
		time.Sleep(100 * time.Millisecond)
		return true
	}
	return false
}

// refusedRetry is how long the agent waits before it tries again a
// certificate the cluster refused.
const refusedRetry = 30 * time.Second

// workLoop keeps the assignment stream open on the leader, resuming from
// the last index after a reconnect.
func (a *Agent) workLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		addr := a.servers.pick(0)
		err := a.stream(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		a.log.Debug("work stream ended", "coordinator", addr, "err", err)
		wait := backoff
		backoff = min(backoff*2, 2*time.Second)
		if st, ok := status.FromError(err); ok && st.Code() == codes.PermissionDenied {
			// A removed or re-enrolled node: only an operator can help.
			a.log.Error("the cluster refuses this node's certificate; to enrol the node again, remove its identity files and start the agent with a new join token", "err", err)
			wait = refusedRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *Agent) stream(ctx context.Context, addr string) error {
	conn, err := a.conn(addr)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := pb.NewAgentClient(conn).Work(sctx, &pb.WorkRequest{Node: a.cfg.Node, AfterIndex: a.after})
	if err != nil {
		return err
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			a.redirect(err, st.Trailer(), addr)
			return err
		}
		if t := ev.GetTask(); t != nil {
			a.exec.submit(ctx, t)
		}
		if c := ev.GetCancel(); c != nil {
			a.exec.cancel(c)
		}
		if ev.GetSnapshotDone() != nil {
			a.log.Debug("assignments in sync", "index", ev.Index, "coordinator", addr)
		}
		a.after = max(a.after, ev.Index)
	}
}
