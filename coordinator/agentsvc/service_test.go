package agentsvc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/testutil"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestJoinConsumesTheTokenOnce: a join token enrols one node with one key
// and the certificate names the node and its enrolment; the same key may
// retry (a lost answer), another key may not; a token for another CA, a
// follower, and a bad CSR are refused without a write.
func TestJoinConsumesTheTokenOnce(t *testing.T) {
	h := newHarness(t, func() time.Time { return t0 })
	tok := h.token("")
	key, csr := newCSR(t, "pve1")
	resp, err := h.s.Join(h.peerCtx("192.0.2.10:40000", nil), &pb.JoinRequest{Token: tok, Node: "pve1", CsrDer: csr, AgentVersion: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	a := h.agentWith("pve1", key, resp.CertDer)
	n := h.node("pve1")
	if a.leaf.Subject.CommonName != "pve1" || pki.Enrolment(a.leaf) != n.Enrolment || n.Enrolment == "" {
		t.Fatalf("certificate for %q enrolment %q; node's enrolment %q", a.leaf.Subject.CommonName, pki.Enrolment(a.leaf), n.Enrolment)
	}
	if n.Status != fsm.NodeReady || string(resp.CaDer) != string(h.s.CACertDER()) {
		t.Fatalf("node %s, CA returned %d bytes", n.Status, len(resp.CaDer))
	}
	if got := a.leaf.NotAfter; !got.Equal(t0.Add(30 * 24 * time.Hour).Truncate(time.Second)) {
		t.Fatalf("certificate expires %v, want the default 30 days after %v", got, t0)
	}
	if _, ok := h.s.NodeLive("pve1"); !ok {
		t.Fatal("a join is not a sign of life")
	}

	// The same key again: the same join, the same enrolment.
	resp2, err := h.s.Join(h.peerCtx("192.0.2.10:40001", nil), &pb.JoinRequest{Token: tok, Node: "pve1", CsrDer: csr})
	if err != nil {
		t.Fatalf("a retried join: %v", err)
	}
	if got := pki.Enrolment(h.agentWith("pve1", key, resp2.CertDer).leaf); got != n.Enrolment {
		t.Fatalf("a retried join enrolled anew: %q, want %q", got, n.Enrolment)
	}
	before := h.b.Index()
	_, other := newCSR(t, "pve1")
	_, err = h.s.Join(h.peerCtx("192.0.2.11:40000", nil), &pb.JoinRequest{Token: tok, Node: "pve1", CsrDer: other})
	wantCode(t, "a used token with another key", err, codes.Unauthenticated)
	_, err = h.s.Join(h.peerCtx("192.0.2.11:40000", nil), &pb.JoinRequest{Token: pki.NewToken(pki.Pin([]byte("another CA"))).String(), Node: "pve2", CsrDer: other})
	wantCode(t, "a token of another CA", err, codes.Unauthenticated)
	_, err = h.s.Join(h.peerCtx("192.0.2.11:40000", nil), &pb.JoinRequest{Token: "pxj_nope", Node: "pve2", CsrDer: other})
	wantCode(t, "a malformed token", err, codes.Unauthenticated)
	_, err = h.s.Join(h.peerCtx("192.0.2.11:40000", nil), &pb.JoinRequest{Token: h.token(""), Node: "pve2", CsrDer: []byte("not a CSR")})
	wantCode(t, "a bad CSR", err, codes.InvalidArgument)
	if h.b.Index() != before+1 { // the one token made above
		t.Fatalf("refused joins wrote %d entries", h.b.Index()-before-1)
	}
	h.b.follower.Store(true)
	_, err = h.s.Join(h.peerCtx("192.0.2.11:40000", nil), &pb.JoinRequest{Token: h.token(""), Node: "pve2", CsrDer: other})
	if !proto.IsNotLeader(err) {
		t.Fatalf("a join on a follower: %v, want not leader", err)
	}
}

// TestJoinIsRateLimitedPerAddress: each source address has a burst of
// joins, then waits; another address is not held back, and the bucket
// refills with the service's clock.
func TestJoinIsRateLimitedPerAddress(t *testing.T) {
	clk := testutil.NewClock(t0)
	h := newHarness(t, clk.Now)
	req := &pb.JoinRequest{Token: "pxj_nope", Node: "pve1"}
	for range joinBurst {
		_, err := h.s.Join(h.peerCtx("192.0.2.20:1000", nil), req)
		wantCode(t, "a join within the burst", err, codes.Unauthenticated)
	}
	_, err := h.s.Join(h.peerCtx("192.0.2.20:1001", nil), req)
	wantCode(t, "a join past the burst", err, codes.ResourceExhausted)
	_, err = h.s.Join(h.peerCtx("192.0.2.21:1000", nil), req)
	wantCode(t, "a join from another address", err, codes.Unauthenticated)
	clk.Advance(time.Second / joinRate)
	_, err = h.s.Join(h.peerCtx("192.0.2.20:1002", nil), req)
	wantCode(t, "a join once the bucket refilled", err, codes.Unauthenticated)
}

// TestRenewKeepsTheEnrolmentAndOnlyForItsNode: a renewal signs the
// caller's node a certificate of the same enrolment, valid CertTTL from
// now; a node cannot renew for another, and a request without a node
// certificate is refused.
func TestRenewKeepsTheEnrolmentAndOnlyForItsNode(t *testing.T) {
	clk := testutil.NewClock(t0)
	h := newHarness(t, clk.Now)
	a := h.join("pve1", h.token(""))
	h.join("pve2", h.token(""))
	clk.Advance(29 * 24 * time.Hour) // a day before it expires
	ctx := h.mustAuthed(a, pb.Agent_Renew_FullMethodName)
	key, csr := newCSR(t, "pve1")
	resp, err := h.s.Renew(ctx, &pb.RenewRequest{Node: "pve1", CsrDer: csr})
	if err != nil {
		t.Fatal(err)
	}
	renewed := h.agentWith("pve1", key, resp.CertDer)
	if pki.Enrolment(renewed.leaf) != pki.Enrolment(a.leaf) {
		t.Fatalf("renewed into enrolment %q, want %q", pki.Enrolment(renewed.leaf), pki.Enrolment(a.leaf))
	}
	if want := clk.Now().Add(30 * 24 * time.Hour).Truncate(time.Second); !renewed.leaf.NotAfter.Equal(want) {
		t.Fatalf("renewed certificate expires %v, want %v", renewed.leaf.NotAfter, want)
	}
	if _, err := h.authed(renewed, pb.Agent_Report_FullMethodName); err != nil {
		t.Fatalf("the renewed certificate: %v", err)
	}
	_, err = h.s.Renew(ctx, &pb.RenewRequest{Node: "pve2", CsrDer: csr})
	wantCode(t, "renew for another node", err, codes.PermissionDenied)
	_, err = h.s.Renew(ctx, &pb.RenewRequest{Node: "pve1", CsrDer: []byte("junk")})
	wantCode(t, "renew with a bad CSR", err, codes.InvalidArgument)
	_, err = h.s.authenticate(h.peerCtx("192.0.2.10:1", nil), pb.Agent_Renew_FullMethodName)
	wantCode(t, "renew without a certificate", err, codes.Unauthenticated)
}

// TestRevokedCertificatesAreRefused: a node enrolled again (a token made
// for it) loses its earlier certificates, renewed ones included; a removed
// node loses every certificate, and a stream it holds ends at the next
// check.
func TestRevokedCertificatesAreRefused(t *testing.T) {
	h := newHarness(t, func() time.Time { return t0 })
	old := h.join("pve1", h.token(""))
	h.mustAuthed(old, pb.Agent_Renew_FullMethodName)
	fresh := h.join("pve1", h.token("pve1"))
	_, err := h.authed(old, pb.Agent_Renew_FullMethodName)
	wantCode(t, "a certificate of an earlier enrolment", err, codes.PermissionDenied)
	h.mustAuthed(fresh, pb.Agent_Renew_FullMethodName)
	_, err = h.s.authenticate(h.peerCtx("192.0.2.10:1", nil), pb.Agent_Join_FullMethodName)
	if err != nil {
		t.Fatalf("Join needs no certificate: %v", err)
	}

	h.apply(fsm.Command{Type: fsm.CmdRemoveNode, RequestID: "rm", RemoveNode: &fsm.RemoveNodeCmd{Node: "pve1"}})
	_, err = h.authed(fresh, pb.Agent_Report_FullMethodName)
	wantCode(t, "a removed node's certificate", err, codes.PermissionDenied)
	// A follower may not have applied the join yet: it sends the agent to
	// the leader rather than refuse it.
	h.b.follower.Store(true)
	_, err = h.authed(fresh, pb.Agent_Report_FullMethodName)
	if !proto.IsNotLeader(err) {
		t.Fatalf("an unknown node on a follower: %v, want not leader", err)
	}
}

// TestServerCertificateIsReissuedBeforeItExpires: the gRPC serving
// certificate is kept while more than a day of it is left, then issued
// again from the cluster CA.
func TestServerCertificateIsReissuedBeforeItExpires(t *testing.T) {
	clk := testutil.NewClock(t0)
	h := newHarness(t, clk.Now)
	first, err := h.s.serverCert(h.s.CA())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Leaf.VerifyHostname(pki.ServerName); err != nil {
		t.Fatalf("the serving certificate: %v", err)
	}
	clk.Advance(6*24*time.Hour - time.Minute)
	if again, _ := h.s.serverCert(h.s.CA()); again != first {
		t.Fatal("reissued with more than a day left")
	}
	clk.Advance(2 * time.Minute)
	renewed, err := h.s.serverCert(h.s.CA())
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("not reissued a day before it expires: %v", renewed.Leaf.NotAfter)
	}
}

// TestExpiredCertificateIsRefusedAtTheHandshake runs the service behind
// real TLS on loopback: a node certificate is accepted until it expires
// by the service's clock, renewed near its end, and refused once expired,
// while the renewed one goes on working.
func TestExpiredCertificateIsRefusedAtTheHandshake(t *testing.T) {
	clk := testutil.NewClock(time.Now())
	h := newHarness(t, clk.Now)
	a := h.join("pve1", h.token(""))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(h.s.ServerOptions()...)
	pb.RegisterAgentServer(srv, h.s)
	go func() { _ = srv.Serve(h.s.LimitListener(ln)) }()
	t.Cleanup(srv.Stop)

	pool := x509.NewCertPool()
	pool.AddCert(h.s.CA().Cert)
	// client is an agent's connection, with who's certificate (nil: none).
	client := func(who *agent) pb.AgentClient {
		t.Helper()
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: pki.ServerName, Time: clk.Now}
		if who != nil {
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{who.der}, PrivateKey: who.key, Leaf: who.leaf}}
		}
		cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return pb.NewAgentClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	renew := func(who *agent) (*agent, error) {
		t.Helper()
		key, csr := newCSR(t, who.node)
		resp, err := client(who).Renew(ctx, &pb.RenewRequest{Node: who.node, CsrDer: csr})
		if err != nil {
			return nil, err
		}
		return h.agentWith(who.node, key, resp.CertDer), nil
	}
	if _, err := renew(a); err != nil {
		t.Fatalf("a valid certificate: %v", err)
	}
	_, csr := newCSR(t, "pve1")
	_, err = client(nil).Renew(ctx, &pb.RenewRequest{Node: "pve1", CsrDer: csr})
	wantCode(t, "a renewal without a certificate", err, codes.Unauthenticated)
	// A stream passes the same authentication.
	wctx, wcancel := context.WithCancel(ctx)
	stream, err := client(a).Work(wctx, &pb.WorkRequest{Node: "pve1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetSnapshotDone() == nil {
		t.Fatalf("the first event of a stream: %v %v", ev, err)
	}
	wcancel()
	stream, _ = client(nil).Work(ctx, &pb.WorkRequest{Node: "pve1"})
	_, err = stream.Recv()
	wantCode(t, "a stream without a certificate", err, codes.Unauthenticated)
	clk.Advance(30*24*time.Hour - time.Hour)
	renewed, err := renew(a)
	if err != nil {
		t.Fatalf("a certificate an hour before it expires: %v", err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := renew(a); err == nil {
		t.Fatal("an expired certificate was accepted")
	}
	if _, err := renew(renewed); err != nil {
		t.Fatalf("the renewed certificate: %v", err)
	}
}
