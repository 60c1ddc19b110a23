package agentsvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/fsm/fsmtest"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/secrets"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// fakeBackend is the service's view of a one-server cluster without Raft
// (fsmtest.Backend). It leads until told otherwise.
type fakeBackend struct {
	*fsmtest.Backend
	follower atomic.Bool
}

func (b *fakeBackend) ID() string     { return "c1" }
func (b *fakeBackend) IsLeader() bool { return !b.follower.Load() }

func (b *fakeBackend) Leader() (string, string, bool) {
	if b.follower.Load() {
		return "c2", "127.0.0.2:8443", true
	}
	return "c1", "127.0.0.1:8443", true
}

type harness struct {
	t *testing.T
	b *fakeBackend
	s *Service
}

// newHarness is a service over a one-server state whose cluster CA exists.
// now is its clock (nil: time.Now, which a synctest bubble fakes).
func newHarness(t *testing.T, now func() time.Time) *harness {
	t.Helper()
	key, err := secrets.NewKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{Backend: fsmtest.New()}
	var ids atomic.Int64
	s := New(Config{Backend: b, Now: now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewID:  func(prefix string) string { return fmt.Sprintf("%s%d", prefix, ids.Add(1)) },
		Sealer: func() *secrets.Keyring { return kr }})
	if err := s.EnsureCA(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.CA() == nil || s.CAPin() == "" || len(s.CACertDER()) == 0 {
		t.Fatal("no cluster CA after EnsureCA")
	}
	return &harness{t: t, b: b, s: s}
}

func (h *harness) apply(c fsm.Command) fsm.Result {
	h.t.Helper()
	res, _ := h.b.Propose(context.Background(), c)
	if err := res.Err(); err != nil {
		h.t.Fatalf("%v: %v", c.Type, err)
	}
	return res
}

// token records a join token (for node, or any node when node is "") and
// returns its text form.
func (h *harness) token(node string) string {
	h.t.Helper()
	tok := pki.NewToken(h.s.CAPin())
	now := h.s.cfg.Now()
	h.apply(fsm.Command{Type: fsm.CmdJoinToken, RequestID: "tok/" + tok.Secret, JoinToken: &fsm.JoinToken{
		ID: "jt_" + tok.Secret[:8], Hash: tok.Hash(), Node: node, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}})
	return tok.String()
}

// agent is one node's identity as its agent holds it.
type agent struct {
	node string
	key  *ecdsa.PrivateKey
	leaf *x509.Certificate
	der  []byte
}

// peerCtx is the context of a call from addr, over a TLS connection whose
// verified chain is leaf's (nil: no client certificate, as for Join).
func (h *harness) peerCtx(addr string, leaf *x509.Certificate) context.Context {
	var state tls.ConnectionState
	if leaf != nil {
		state.VerifiedChains = [][]*x509.Certificate{{leaf, h.s.CA().Cert}}
	}
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		h.t.Fatal(err)
	}
	return peer.NewContext(context.Background(), &peer.Peer{Addr: ap, AuthInfo: credentials.TLSInfo{State: state}})
}

// join enrols node with a fresh key through Join.
func (h *harness) join(node, token string) *agent {
	h.t.Helper()
	key, csr, err := pki.NewKeyAndCSR(node)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.s.Join(h.peerCtx("192.0.2.10:40000", nil), &pb.JoinRequest{Token: token, Node: node, CsrDer: csr, AgentVersion: "1.0"})
	if err != nil {
		h.t.Fatalf("join %s: %v", node, err)
	}
	return h.agentWith(node, key, resp.CertDer)
}

func (h *harness) agentWith(node string, key *ecdsa.PrivateKey, der []byte) *agent {
	h.t.Helper()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		h.t.Fatal(err)
	}
	return &agent{node: node, key: key, leaf: leaf, der: der}
}

// authed is a call from a's agent that passed the service's
// authentication for method, as the interceptors run it.
func (h *harness) authed(a *agent, method string) (context.Context, error) {
	return h.s.authenticate(h.peerCtx("192.0.2.10:40000", a.leaf), method)
}

func (h *harness) mustAuthed(a *agent, method string) context.Context {
	h.t.Helper()
	ctx, err := h.authed(a, method)
	if err != nil {
		h.t.Fatalf("%s as %s: %v", method, a.node, err)
	}
	return ctx
}

func (h *harness) node(name string) fsm.NodeRecord {
	h.t.Helper()
	return fsmtest.Get(h.t, h.b.FSM(), "enrolled node "+name, func(s *fsm.State) (fsm.NodeRecord, bool) { return s.Node(name) })
}

func (h *harness) task(id string) fsm.Task {
	h.t.Helper()
	return fsmtest.Get(h.t, h.b.FSM(), "task "+id, func(s *fsm.State) (fsm.Task, bool) { return s.Task(id) })
}

// heartbeat reports a heartbeat from a's agent.
func (h *harness) heartbeat(a *agent) {
	h.t.Helper()
	ctx := h.mustAuthed(a, pb.Agent_Report_FullMethodName)
	if _, err := h.s.Report(ctx, &pb.ReportRequest{Node: a.node, Heartbeat: &pb.Heartbeat{AgentVersion: "1.0"}}); err != nil {
		h.t.Fatalf("report from %s: %v", a.node, err)
	}
}

// wantCode checks err's gRPC code.
func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: %v (code %s), want %s", what, err, status.Code(err), code)
	}
}

// newCSR is a CSR for node under a fresh key.
func newCSR(t *testing.T, node string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, csr, err := pki.NewKeyAndCSR(node)
	if err != nil {
		t.Fatal(err)
	}
	return key, csr
}

// workStream is the server side of a Work stream: what the service sends
// arrives on events.
type workStream struct {
	grpc.ServerStream
	ctx    context.Context
	events chan *pb.WorkEvent
}

func (w *workStream) Context() context.Context { return w.ctx }
func (w *workStream) Send(ev *pb.WorkEvent) error {
	select {
	case w.events <- ev:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// liveStream is the server side of a Live stream: the agent's replies are
// fed through replies (closed: the agent hangs up), the service's
// requests arrive on requests.
type liveStream struct {
	grpc.ServerStream
	ctx      context.Context
	replies  chan *pb.LiveReply
	requests chan *pb.LiveRequest
}

func (l *liveStream) Context() context.Context { return l.ctx }
func (l *liveStream) Send(r *pb.LiveRequest) error {
	select {
	case l.requests <- r:
		return nil
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
}
func (l *liveStream) Recv() (*pb.LiveReply, error) {
	select {
	case r, ok := <-l.replies:
		if !ok {
			return nil, io.EOF
		}
		return r, nil
	case <-l.ctx.Done():
		return nil, l.ctx.Err()
	}
}
