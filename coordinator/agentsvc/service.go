// Package agentsvc is the coordinator's side of the agent protocol: the
// gRPC service agents join and work through, its mTLS configuration from
// the cluster CA, node liveness by TTL on the leader, inventory (VMIDs
// used outside Proximity become foreign), the fenced task queue's
// delivery and results, and the live channel to each agent (query.go).
package agentsvc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/coordinator/usage"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// Backend is what the service needs of the cluster node.
type Backend interface {
	ID() string
	IsLeader() bool
	Leader() (id, httpAddr string, ok bool)
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	FSM() *fsm.FSM
}

// Config configures the service.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// TTL is how long a node may go without a report before it is down
	// (default 15s); Heartbeat is the report interval agents are told to
	// keep (default 2s).
	TTL, Heartbeat time.Duration
	// CertTTL is the lifetime of node certificates (default 30 days).
	CertTTL time.Duration
	// NewID makes request and record IDs.
	NewID func(prefix string) string
	// Now is the clock of liveness deadlines, certificates (issued and
	// verified) and the join limiter (default time.Now). The loops' own
	// timers run on real time, which testing/synctest fakes.
	Now func() time.Time
	// Sealer returns the keyring that seals and opens the CA's key (the
	// cluster keys in force).
	Sealer func() *secrets.Keyring
}

// Service implements the agent gRPC service.
type Service struct {
	pb.UnimplementedAgentServer
	cfg Config
	b   Backend
	log *slog.Logger

	parsed   atomic.Pointer[parsedCA]
	certMu   sync.Mutex
	cert     *tls.Certificate
	certFrom []byte // CA the cached server certificate was issued by

	live *liveness
	// usage is the history of the containers' metrics (leader only).
	usage *usage.Store
	// links are the agents' Live streams open on this server (query.go).
	links *liveLinks
	// joins limits Join calls per source address; logs limits the log
	// lines about refused peers.
	joins *PeerLimiter
	logs  logLimiter
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.TTL == 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, b: cfg.Backend, log: cfg.Logger.With("component", "agentsvc")}
	s.live = newLiveness(s)
	s.usage = usage.New(0)
	s.links = &liveLinks{conns: map[string]*liveConn{}}
	s.joins = NewPeerLimiter(joinRate, joinBurst, maxPeers)
	s.logs = newLogLimiter()
	return s
}

// parsedCA is the cluster CA parsed once, with its pool for verifying
// client certificates. The CA never changes once it exists (SetCA refuses
// a second one), so every handshake can share it.
type parsedCA struct {
	ca   *pki.CA
	pin  string
	pool *x509.CertPool
}

// ca returns the cluster CA, or nil before the first leader made it.
func (s *Service) ca() *pki.CA {
	if p := s.parsed.Load(); p != nil {
		return p.ca
	}
	var st *fsm.CAState
	s.b.FSM().Read(func(x *fsm.State) {
		if x.CA != nil {
			cp := *x.CA
			st = &cp
		}
	})
	if st == nil {
		return nil
	}
	keyDER := st.KeyDER
	if st.Key != nil {
		if s.cfg.Sealer == nil {
			s.log.Error("cluster CA key is sealed and this server has no keyring")
			return nil
		}
		var err error
		if keyDER, err = s.cfg.Sealer().Open(fsm.CAKeyPurpose, st.Key); err != nil {
			s.log.Error("cluster CA key does not open with this server's cluster keys", "err", err)
			return nil
		}
	}
	ca, err := pki.LoadCA(st.CertDER, keyDER)
	if err != nil {
		s.log.Error("cluster CA does not parse", "err", err)
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	s.parsed.Store(&parsedCA{ca: ca, pin: pki.Pin(ca.CertDER), pool: pool})
	return ca
}

// CA is the cluster CA with its key, or nil before the first leader made
// it (or when this server's keys cannot open it).
func (s *Service) CA() *pki.CA { return s.ca() }

// CAPin is the pin of the cluster CA, or "" before it exists.
func (s *Service) CAPin() string {
	if p := s.parsed.Load(); p != nil {
		return p.pin
	}
	pin := ""
	s.b.FSM().Read(func(x *fsm.State) {
		if x.CA != nil {
			pin = pki.Pin(x.CA.CertDER)
		}
	})
	return pin
}

// CACertDER is the cluster CA's certificate, or nil before it exists.
func (s *Service) CACertDER() []byte {
	var der []byte
	s.b.FSM().Read(func(x *fsm.State) {
		if x.CA != nil {
			der = x.CA.CertDER
		}
	})
	return der
}

// EnsureCA creates the cluster CA if there is none. The leader calls it.
func (s *Service) EnsureCA(ctx context.Context) error {
	if s.ca() != nil {
		return nil
	}
	ca, err := pki.NewCA(s.cfg.Now())
	if err != nil {
		return err
	}
	if s.cfg.Sealer == nil {
		return errors.New("create the cluster CA: no keyring to seal its key")
	}
	sealed, err := s.cfg.Sealer().Seal(fsm.CAKeyPurpose, ca.KeyDER)
	if err != nil {
		return err
	}
	res, err := s.b.Propose(ctx, fsm.Command{Type: fsm.CmdSetCA, RequestID: s.cfg.NewID("ca_"),
		SetCA: &fsm.CAState{CertDER: ca.CertDER, Key: sealed}})
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil && !problem.Is(err, problem.Conflict) {
		return err
	}
	return nil
}

// TLSConfig is the gRPC server's TLS: a serving certificate issued from
// the cluster CA (reissued when the CA appears or the certificate nears
// expiry), and client certificates verified when given. Join is the only
// call allowed without one (see the interceptors).
func (s *Service) TLSConfig() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		ca := s.ca()
		if ca == nil {
			return nil, errors.New("the cluster CA does not exist yet")
		}
		cert, err := s.serverCert(ca)
		if err != nil {
			return nil, err
		}
		return &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    s.parsed.Load().pool,
			NextProtos:   []string{"h2"},
			// A client certificate is valid or expired by the
			// service's clock, the one that issued it.
			Time: s.cfg.Now,
		}, nil
	}
	return base
}

func (s *Service) serverCert(ca *pki.CA) (*tls.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	now := s.cfg.Now()
	if s.cert != nil && string(s.certFrom) == string(ca.CertDER) && now.Before(s.cert.Leaf.NotAfter.Add(-24*time.Hour)) {
		return s.cert, nil
	}
	c, err := ca.ServerCert(s.b.ID(), now, 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	s.cert, s.certFrom = &c, ca.CertDER
	return s.cert, nil
}

// ServerOptions are the gRPC server options: TLS, keepalive enforcement
// matching the agents' pings, the handshake deadline and stream cap, and
// the node-identity interceptors. Serve on LimitListener's listener for
// the connection caps.
func (s *Service) ServerOptions() []grpc.ServerOption {
	return append(append(serverKeepalive(), serverLimits()...),
		grpc.Creds(credentials.NewTLS(s.TLSConfig())),
		grpc.UnaryInterceptor(s.unaryAuth),
		grpc.StreamInterceptor(s.streamAuth),
		grpc.MaxRecvMsgSize(4<<20),
	)
}

type certKey struct{}

// callerCert is the certificate authenticate verified for this call; nil
// only for Join, which needs none.
func callerCert(ctx context.Context) *x509.Certificate {
	leaf, _ := ctx.Value(certKey{}).(*x509.Certificate)
	return leaf
}

// certNode returns the caller's verified client certificate, which names
// its node.
func certNode(ctx context.Context) (*x509.Certificate, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, false
	}
	leaf := ti.State.VerifiedChains[0][0]
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth {
			return leaf, leaf.Subject.CommonName != ""
		}
	}
	return nil, false
}

// enrolled checks that the certificate's node is enrolled and that the
// certificate is of its current enrolment: a removed node, or one that
// joined again since, is refused with its old certificate.
func (s *Service) enrolled(leaf *x509.Certificate) error {
	if leaf == nil {
		return status.Error(codes.Unauthenticated, "a node certificate is required (join first)")
	}
	node := leaf.Subject.CommonName
	n, ok := fsm.NodeRecord{}, false
	s.b.FSM().Read(func(st *fsm.State) { n, ok = st.Node(node) })
	if !ok {
		return status.Errorf(codes.PermissionDenied, "node %s is not enrolled (removed?); join it again with a new token", node)
	}
	if n.Enrolment != "" && pki.Enrolment(leaf) != n.Enrolment {
		return status.Errorf(codes.PermissionDenied, "this certificate is of an earlier enrolment of node %s", node)
	}
	return nil
}

func (s *Service) authenticate(ctx context.Context, method string) (context.Context, error) {
	if method == pb.Agent_Join_FullMethodName {
		return ctx, nil
	}
	leaf, ok := certNode(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a node certificate is required (join first)")
	}
	if err := s.enrolled(leaf); err != nil {
		// A follower may not have applied the join yet: send the agent
		// to the leader, which decides.
		if lerr := s.leaderOnly(ctx); lerr != nil {
			return nil, lerr
		}
		return nil, err
	}
	return context.WithValue(ctx, certKey{}, leaf), nil
}

func (s *Service) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Service) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, authedStream{ss, ctx})
}

// peerAddr is the caller's remote address, "" if unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// speaksFor checks that the request's node is the certificate's.
func speaksFor(ctx context.Context, node string) error {
	cn := ""
	if leaf := callerCert(ctx); leaf != nil {
		cn = leaf.Subject.CommonName
	}
	if cn == "" || cn != node {
		return status.Errorf(codes.PermissionDenied, "this certificate is node %q's, not %q's", cn, node)
	}
	return nil
}

// leaderOnly answers FAILED_PRECONDITION on a follower, naming the leader's
// gRPC address in the trailer so the agent can follow it.
func (s *Service) leaderOnly(ctx context.Context) error {
	if s.b.IsLeader() {
		return nil
	}
	if addr := s.leaderGRPC(); addr != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(proto.LeaderTrailer, addr))
	}
	return proto.NotLeader()
}

func (s *Service) leaderGRPC() string {
	id, _, ok := s.b.Leader()
	if !ok {
		return ""
	}
	addr := ""
	s.b.FSM().Read(func(st *fsm.State) {
		if sv, ok := st.Server(id); ok {
			addr = sv.GRPCAddr
		}
	})
	return addr
}

// servers lists every coordinator's gRPC address.
func (s *Service) servers() []string {
	var out []string
	s.b.FSM().Read(func(st *fsm.State) {
		for _, sv := range st.ListServers() {
			if sv.GRPCAddr != "" {
				out = append(out, sv.GRPCAddr)
			}
		}
	})
	return out
}

// grpcErr maps a proposal failure to a status.
func grpcErr(err error) error {
	switch {
	case errors.Is(err, proposer.ErrNotLeader):
		return proto.NotLeader()
	case errors.Is(err, proposer.ErrUnknownOutcome), errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.Unavailable, "the outcome is unknown; retry")
	}
	switch problem.KindOf(err) {
	case problem.Invalid:
		return status.Error(codes.InvalidArgument, err.Error())
	case problem.NotFound:
		return status.Error(codes.NotFound, err.Error())
	case problem.Conflict, problem.Exhausted:
		return status.Error(codes.FailedPrecondition, err.Error())
	case problem.Unauthenticated:
		return status.Error(codes.Unauthenticated, err.Error())
	case problem.Permission:
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return status.Error(codes.Internal, "internal error")
}

func (s *Service) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.b.Propose(ctx, cmd)
	if err != nil {
		return res, err
	}
	return res, res.Err()
}

// Join enrols a node: the token is consumed in one FSM command, and only
// then is the signed certificate handed out. Anyone who can reach the port
// can call Join, so each source address gets a few calls a second, and
// the leader checks the token against its own state before it proposes:
// a join that would be refused writes nothing.
func (s *Service) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	remote := peerAddr(ctx)
	if wait := s.joins.Allow(remote, s.cfg.Now()); wait > 0 {
		if s.logs.allow() {
			s.log.Warn("join refused: too many attempts from this address", "remote", PeerKey(remote), "node", req.Node)
		}
		return nil, status.Errorf(codes.ResourceExhausted, "too many join attempts from this address; retry in %s", wait.Round(time.Millisecond))
	}
	if err := s.leaderOnly(ctx); err != nil {
		return nil, err
	}
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	ca := s.ca()
	if ca == nil {
		return nil, status.Error(codes.Unavailable, "the cluster CA does not exist yet")
	}
	if tok.Pin != pki.Pin(ca.CertDER) {
		return nil, status.Error(codes.Unauthenticated, "the join token was made for another cluster CA")
	}
	now := s.cfg.Now()
	keyPin, err := pki.KeyPin(req.CsrDer)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	join := &fsm.JoinNodeCmd{
		TokenHash: tok.Hash(), Node: req.Node, KeyPin: keyPin, Enrolment: s.cfg.NewID("enr_"), Version: req.AgentVersion, At: now,
	}
	// This server leads and has applied every earlier term's entries
	// (IsLeader holds only after the barrier), and a token is applied here
	// before its creation is answered, so the check sees every token.
	var refused error
	s.b.FSM().Read(func(st *fsm.State) { refused = st.CheckJoin(*join) })
	if refused != nil {
		if s.logs.allow() {
			s.log.Warn("join refused", "remote", PeerKey(remote), "node", req.Node, "reason", refused)
		}
		return nil, grpcErr(refused)
	}
	res, err := s.propose(ctx, fsm.Command{Type: fsm.CmdJoinNode, RequestID: s.cfg.NewID("join_"), JoinNode: join})
	if err != nil {
		return nil, grpcErr(err)
	}
	// The CSR is valid (KeyPin checked it). Should signing fail all the
	// same, the agent's retry with the same key is the same join.
	cert, err := ca.SignNode(req.CsrDer, req.Node, res.Node.Enrolment, now, s.cfg.CertTTL)
	if err != nil {
		s.log.Error("sign a node certificate", "node", req.Node, "err", err)
		return nil, status.Error(codes.Internal, "the node certificate could not be signed; retry")
	}
	s.live.seen(req.Node, nil)
	s.log.Info("node joined", "node", req.Node, "version", req.AgentVersion)
	return &pb.JoinResponse{CertDer: cert, CaDer: ca.CertDER, Servers: s.servers()}, nil
}

// Renew signs a new certificate for the caller's node.
func (s *Service) Renew(ctx context.Context, req *pb.RenewRequest) (*pb.RenewResponse, error) {
	if err := speaksFor(ctx, req.Node); err != nil {
		return nil, err
	}
	ca := s.ca()
	if ca == nil {
		return nil, status.Error(codes.Unavailable, "the cluster CA does not exist yet")
	}
	cert, err := ca.SignNode(req.CsrDer, req.Node, pki.Enrolment(callerCert(ctx)), s.cfg.Now(), s.cfg.CertTTL)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.RenewResponse{CertDer: cert}, nil
}

// workEvents are the tasks to run and the tasks to stop, in fence order,
// so that an agent resuming after any of them misses none of the rest.
func (s *Service) workEvents(tasks, fenced []fsm.Task) []*pb.WorkEvent {
	out := make([]*pb.WorkEvent, 0, len(tasks)+len(fenced))
	i, j := 0, 0
	for i < len(tasks) || j < len(fenced) {
		if j == len(fenced) || (i < len(tasks) && tasks[i].Fence <= fenced[j].Fence) {
			t := tasks[i]
			out = append(out, &pb.WorkEvent{Index: t.Fence, Event: &pb.WorkEvent_Task{Task: &pb.Task{
				Id: t.ID, Kind: t.Kind, Vmid: uint32(t.VMID), Fence: t.Fence, Attempt: uint32(t.Attempt), SpecJson: s.openSpec(t),
			}}})
			i++
			continue
		}
		t := fenced[j]
		out = append(out, &pb.WorkEvent{Index: t.Fence, Event: &pb.WorkEvent_Cancel{Cancel: &pb.CancelTask{Id: t.ID, Fence: t.Fence, Reason: t.Error}}})
		j++
	}
	return out
}

// Work streams the node's pending tasks: those issued after the request's
// index first, then a marker, then every task issued or reissued later,
// and, in the same order, the tasks fenced (cancelled or expired) that
// the agent must stop.
func (s *Service) Work(req *pb.WorkRequest, stream pb.Agent_WorkServer) error {
	ctx := stream.Context()
	if err := speaksFor(ctx, req.Node); err != nil {
		return err
	}
	after, first := req.AfterIndex, true
	var scanned uint64 // the state's index at the last scan of the tasks
	leaf := callerCert(ctx)
	for {
		if err := s.leaderOnly(ctx); err != nil {
			return err
		}
		// A node removed while its stream is open loses the stream.
		if err := s.enrolled(leaf); err != nil {
			return err
		}
		changed := s.b.FSM().Changed()
		var tasks, fenced []fsm.Task
		var index uint64
		s.b.FSM().Read(func(st *fsm.State) {
			// Most entries touch no task (reservations, reports); only
			// scan when some task changed since the last scan.
			if first || st.TasksChangedAt() > scanned {
				tasks, index, scanned = st.PendingTasks(req.Node, after), st.Index, st.Index
				// An agent that starts afresh (after 0) runs nothing it
				// could be told to stop.
				if after > 0 {
					fenced = st.FencedTasks(req.Node, after)
				}
			} else {
				index = after
			}
		})
		for _, ev := range s.workEvents(tasks, fenced) {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		after = max(after, index)
		if first {
			first = false
			if err := stream.Send(&pb.WorkEvent{Index: after, Event: &pb.WorkEvent_SnapshotDone{SnapshotDone: &pb.SnapshotDone{}}}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(2 * time.Second): // notice a lost leadership
		}
	}
}
