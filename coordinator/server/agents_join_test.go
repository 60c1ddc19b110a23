package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// TestJoinRetriedAfterLostAnswer: an agent that died after the cluster
// consumed its token, but before it saved its certificate, joins again
// with the same token, because it kept the key it joined with. The used
// token still refuses any other key and any other node.
func TestJoinRetriedAfterLostAnswer(t *testing.T) {
	tc := newTestCluster(t, 1)
	tok := tc.joinToken(nil)
	parsed, err := pki.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tc.dir, "pve1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The join the agent sent before it died: its key saved as the join
	// key, the answer never saved.
	key, csr, err := pki.NewKeyAndCSR("pve1")
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "join.key"), pki.PEM("EC PRIVATE KEY", der), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(tc.grpcAddrs()[0], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, VerifyPeerCertificate: pki.VerifyPinned(parsed.Pin)})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join := func(node string, csr []byte) error {
		_, err := pb.NewAgentClient(conn).Join(ctx, &pb.JoinRequest{Token: tok, Node: node, CsrDer: csr, AgentVersion: "test"})
		return err
	}
	if err := join("pve1", csr); err != nil {
		t.Fatalf("the first join: %v", err)
	}
	_, otherCSR, err := pki.NewKeyAndCSR("pve1")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "the used token with another key", join("pve1", otherCSR), codes.Unauthenticated)
	wantCode(t, "the used token for another node", join("pve2", csr), codes.Unauthenticated)

	tc.startAgent("pve1", tok, dir, tc.grpcAddrs())
	var crt []byte
	waitFor(t, "the restarted agent's certificate", 15*time.Second, func() bool {
		crt, err = os.ReadFile(filepath.Join(dir, "node.crt"))
		return err == nil
	})
	block, _ := pem.Decode(crt)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("the certificate is not for the key the agent joined with")
	}
	if _, err := os.Stat(filepath.Join(dir, "join.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the join key outlives the join: %v", err)
	}
	hb := time.Now()
	waitFor(t, "heartbeats", 15*time.Second, func() bool {
		n := tc.nodes_()["pve1"]
		return n.Status == "ready" && n.LastHeartbeat != nil && n.LastHeartbeat.After(hb)
	})
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		if ns := st.ListNodes(); len(ns) != 1 || ns[0].Name != "pve1" {
			t.Fatalf("enrolled nodes: %+v", ns)
		}
	})
}

// TestRemoveNode: an admin removes a node once it holds nothing (409
// before, in the one error format); its agent is refused from then on,
// its open work and live streams included; joining again with a new token
// works, and the certificate of the earlier enrolment stays refused.
func TestRemoveNode(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.startAgent("node-a", tc.joinToken(nil), filepath.Join(tc.dir, "node-a"), tc.grpcAddrs())
	b := tc.startAgent("node-b", tc.joinToken(nil), filepath.Join(tc.dir, "node-b"), tc.grpcAddrs())
	waitFor(t, "both nodes ready with their certificates", 15*time.Second, func() bool {
		ns := tc.nodes_()
		_, err := os.Stat(filepath.Join(b.dir, "node.crt"))
		return err == nil && ns["node-a"].Status == "ready" && ns["node-b"].Status == "ready"
	})
	addr := tc.grpcAddrs()[0]
	asB := clientAs(t, b.dir, addr, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := asB.Work(ctx, &pb.WorkRequest{Node: "node-b"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetSnapshotDone() == nil {
		t.Fatalf("node-b's work stream: %v %v", ev, err)
	}

	agents := tc.leaderServer().Agents()
	waitFor(t, "node-b's live stream", 15*time.Second, func() bool { return agents.LiveConnected("node-b") })

	r := tc.reserve("held", "node-b")
	st, hdr, body := tc.raw(tc.waitLeader(), "DELETE", "/api/v1/nodes/node-b", tc.token, "", nil)
	if st != http.StatusConflict || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "1 reservation(s)") {
		t.Fatalf("removing a node that holds a reservation: %d %s %s", st, hdr.Get("Content-Type"), body)
	}
	if _, ok := tc.nodes_()["node-b"]; !ok {
		t.Fatal("a refused removal removed the node")
	}
	if st, _, body := tc.raw(tc.waitLeader(), "DELETE", "/api/v1/reservations/"+r.ID, tc.token, "", nil); st != http.StatusNoContent {
		t.Fatalf("release: %d %s", st, body)
	}
	if st, _, body := tc.raw(tc.waitLeader(), "DELETE", "/api/v1/nodes/node-b", tc.token, "", nil); st != http.StatusNoContent {
		t.Fatalf("remove node-b: %d %s", st, body)
	}
	if st, _, body := tc.raw(tc.waitLeader(), "DELETE", "/api/v1/nodes/node-b", tc.token, "", nil); st != http.StatusNotFound {
		t.Fatalf("remove node-b again: %d %s", st, body)
	}
	if ns := tc.nodes_(); len(ns) != 1 || ns["node-a"].Name != "node-a" {
		t.Fatalf("nodes after the removal: %+v", ns)
	}
	for {
		_, err := stream.Recv()
		if err != nil {
			wantCode(t, "node-b's open work stream", err, codes.PermissionDenied)
			break
		}
	}
	_, err = asB.Report(ctx, &pb.ReportRequest{Node: "node-b", Heartbeat: &pb.Heartbeat{}})
	wantCode(t, "a report from the removed node", err, codes.PermissionDenied)
	waitFor(t, "node-b's live stream closed", 15*time.Second, func() bool { return !agents.LiveConnected("node-b") })
	b.stop()

	// Back with a new token: a new enrolment, and the old certificate is
	// still refused.
	again := tc.startAgent("node-b", tc.joinToken(nil), filepath.Join(tc.dir, "node-b2"), tc.grpcAddrs())
	hb := time.Now()
	waitFor(t, "node-b back, heartbeating", 15*time.Second, func() bool {
		n := tc.nodes_()["node-b"]
		return n.Status == "ready" && n.LastHeartbeat != nil && n.LastHeartbeat.After(hb)
	})
	// The join is recorded (and the node ready) when the leader answers;
	// the agent writes its new identity once it has the answer.
	waitFor(t, "node-b's new identity on disk", 15*time.Second, func() bool {
		_, errCA := os.Stat(filepath.Join(again.dir, "ca.crt"))
		_, errCert := os.Stat(filepath.Join(again.dir, "node.crt"))
		return errCA == nil && errCert == nil
	})
	_, err = asB.Report(ctx, &pb.ReportRequest{Node: "node-b", Heartbeat: &pb.Heartbeat{}})
	wantCode(t, "a report with the earlier enrolment's certificate", err, codes.PermissionDenied)
	if _, err := clientAs(t, again.dir, addr, true).Report(ctx, &pb.ReportRequest{Node: "node-b", Heartbeat: &pb.Heartbeat{}}); err != nil {
		t.Fatalf("a report with the new certificate: %v", err)
	}
}
