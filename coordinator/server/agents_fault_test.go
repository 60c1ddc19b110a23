package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// clientAs dials addr trusting the CA an agent saved in dir, presenting
// that agent's certificate when withCert is set.
func clientAs(t *testing.T, dir, addr string, withCert bool) pb.AgentClient {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: pki.ServerName}
	if withCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewAgentClient(conn)
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want %v", what, err, code)
	}
}

// TestNodeCannotActForAnother: node A's certificate cannot read node B's
// work, report for B, or complete B's task.
func TestNodeCannotActForAnother(t *testing.T) {
	tc := newTestCluster(t, 1)
	a := tc.startAgent("node-a", tc.joinToken(nil), filepath.Join(tc.dir, "node-a"), tc.grpcAddrs())
	b := tc.startAgent("node-b", tc.joinToken(nil), filepath.Join(tc.dir, "node-b"), tc.grpcAddrs())
	waitFor(t, "both nodes", 15*time.Second, func() bool {
		ns := tc.nodes_()
		return ns["node-a"].Status == "ready" && ns["node-b"].Status == "ready"
	})
	b.stop() // node B's task stays pending
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task, err := tc.leaderServer().Agents().Submit(ctx, fsm.Task{ID: "tsk_b", Node: "node-b", Kind: taskspec.Start, VMID: 12345}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := tc.grpcAddrs()[0]
	asA := clientAs(t, a.dir, addr, true)

	st, err := asA.Work(ctx, &pb.WorkRequest{Node: "node-b"})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, "A reads B's work", err, codes.PermissionDenied)
	_, err = asA.Report(ctx, &pb.ReportRequest{Node: "node-b", Heartbeat: &pb.Heartbeat{}})
	wantCode(t, "A reports as B", err, codes.PermissionDenied)
	_, err = asA.Report(ctx, &pb.ReportRequest{Node: "node-a", Events: []*pb.TaskEvent{{TaskId: task.ID, Fence: task.Fence,
		Event: &pb.TaskEvent_Result{Result: &pb.Result{Ok: true}}}}})
	wantCode(t, "A completes B's task", err, codes.PermissionDenied)
	live, err := asA.Live(ctx)
	if err == nil {
		err = live.Send(&pb.LiveReply{Node: "node-b"})
	}
	if err == nil {
		_, err = live.Recv()
	}
	wantCode(t, "A takes B's live requests", err, codes.PermissionDenied)
	if tc.leaderServer().Agents().LiveConnected("node-b") {
		t.Fatal("A's Live stream stands for B")
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if got, _ := s.Task(task.ID); got.State != fsm.TaskPending {
			t.Fatalf("B's task after A's report: %+v", got)
		}
	})
	st, err = clientAs(t, a.dir, addr, false).Work(ctx, &pb.WorkRequest{Node: "node-a"})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, "no certificate", err, codes.Unauthenticated)
}

// vzcreates counts the node's finished create tasks per VMID.
func vzcreates(t *testing.T, st *pvesim.Store) map[string]int {
	out := map[string]int{}
	if err := st.View(func(n *pvesim.Node) error {
		for _, tk := range n.Tasks {
			if tk.Type == "vzcreate" {
				out[tk.ID+" "+tk.Exit]++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLeaderChangeWithTasksInFlight: the leader dies while the agent runs
// tasks; every task completes, and none ran twice.
func TestLeaderChangeWithTasksInFlight(t *testing.T) {
	tc := newTestCluster(t, 3)
	a := tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs()[:1])
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	if err := a.sim.Store.SetFaults(pvesim.Faults{TaskMS: 300}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var res []fsm.Reservation
	for i := 0; i < n; i++ {
		r := tc.reserve(fmt.Sprintf("inflight-%d", i), "pve1")
		res = append(res, r)
		tc.submitCreate(fmt.Sprintf("tsk_if%d", i), "pve1", r)
	}
	time.Sleep(400 * time.Millisecond)
	old := tc.waitLeader()
	tc.kill(old)
	tc.waitLeader()
	for i, r := range res {
		task := tc.await(fmt.Sprintf("tsk_if%d", i), 60*time.Second)
		if task.State != fsm.TaskSucceeded || task.Attempt != 1 || task.VMID != r.VMID {
			t.Fatalf("task %d: %+v", i, task)
		}
	}
	counts := vzcreates(t, a.sim.Store)
	for _, r := range res {
		if c := counts[fmt.Sprintf("%d OK", r.VMID)]; c != 1 {
			t.Fatalf("VMID %d created %d times (%v)", r.VMID, c, counts)
		}
	}
	if len(counts) != n {
		t.Fatalf("create tasks on the node: %v", counts)
	}
	tc.start(old)
}

// TestAgentKilledMidCreate: kill -9 of the agent process while pct create
// runs; after a restart exactly one container exists and the task
// completes once.
func TestAgentKilledMidCreate(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "proximity-agent")
	if out, err := exec.Command("go", "build", "-tags", "simulate", "-o", bin, "github.com/proximity-ve/proximity/agent/cmd/proximity-agent").CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	tc := newTestCluster(t, 1)
	dir := filepath.Join(tc.dir, "pve1")
	start := func(token string) *exec.Cmd {
		args := []string{"--node", "pve1", "--coordinator", tc.grpcAddrs()[0], "--data-dir", dir, "--simulate"}
		if token != "" {
			args = append(args, "--join-token", token)
		}
		cmd := exec.Command(bin, args...)
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	first := start(tc.joinToken(nil))
	waitFor(t, "node ready", 20*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	st, err := pvesim.Open(filepath.Join(dir, "pvesim"), "pve1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetFaults(pvesim.Faults{TaskMS: 3000}); err != nil {
		t.Fatal(err)
	}
	r := tc.reserve("survivor", "pve1")
	tc.submitCreate("tsk_kill", "pve1", r)
	waitFor(t, "create under way", 20*time.Second, func() bool {
		locked := false
		_ = st.View(func(n *pvesim.Node) error {
			locked = n.CTs[r.VMID] != nil && n.CTs[r.VMID].Lock == "create"
			return nil
		})
		return locked
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	start("")
	task := tc.await("tsk_kill", 30*time.Second)
	if task.State != fsm.TaskSucceeded || task.Attempt != 1 || task.VMID != r.VMID {
		t.Fatalf("task after the agent's restart: %+v", task)
	}
	_ = st.View(func(n *pvesim.Node) error {
		if len(n.CTs) != 1 || n.CTs[r.VMID] == nil || n.CTs[r.VMID].Lock != "" || n.CTs[r.VMID].Status != "running" {
			t.Errorf("containers: %+v", n.CTs)
		}
		return nil
	})
	if c := vzcreates(t, st); len(c) != 1 || c[fmt.Sprintf("%d OK", r.VMID)] != 1 {
		t.Fatalf("create tasks: %v", c)
	}
}

// TestCertificateRenewal: an agent renews its certificate before it
// expires and keeps working past the first certificate's expiry.
func TestCertificateRenewal(t *testing.T) {
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) {
		cfg.AgentCertTTL = 3 * time.Second
		cfg.NodeTTL, cfg.Heartbeat = 2*time.Second, 100*time.Millisecond
	}))
	dir := filepath.Join(tc.dir, "pve1")
	tc.startAgent("pve1", tc.joinToken(nil), dir, tc.grpcAddrs())
	// The node is ready once the leader has consumed the token, which is
	// before the agent has written the certificate it was given.
	var first []byte
	waitFor(t, "node ready with its certificate saved", 15*time.Second, func() bool {
		var err error
		first, err = os.ReadFile(filepath.Join(dir, "node.crt"))
		return err == nil && tc.nodes_()["pve1"].Status == "ready"
	})
	waitFor(t, "a renewed certificate", 10*time.Second, func() bool {
		cur, _ := os.ReadFile(filepath.Join(dir, "node.crt"))
		return string(cur) != string(first)
	})
	block, _ := pem.Decode(first)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(leaf.NotAfter) + time.Second)
	hb := time.Now()
	waitFor(t, "heartbeats after the first certificate expired", 5*time.Second, func() bool {
		n := tc.nodes_()["pve1"]
		return n.Status == "ready" && n.LastHeartbeat != nil && n.LastHeartbeat.After(hb)
	})
}

// TestGracefulShutdownHandsOffLeadership: a leader that is stopped (not
// killed) hands leadership over first: when the hand-off returns, the
// still-running server no longer leads, and Shutdown (SIGTERM's path) does
// the hand-off before it stops.
func TestGracefulShutdownHandsOffLeadership(t *testing.T) {
	buf := &lockedBuffer{}
	tc := newTestClusterWith(t, 3, logsTo(buf))
	old := tc.waitLeader()
	cl := tc.nodes[old].server().Cluster()
	if err := cl.HandOff(); err != nil {
		t.Fatalf("hand-off: %v", err)
	}
	if st := cl.Raft().State().String(); st == "Leader" {
		t.Fatal("still the leader after a successful hand-off")
	}
	waitFor(t, "another leader", 10*time.Second, func() bool {
		l := tc.leader()
		return l >= 0 && l != old
	})
	before := strings.Count(buf.String(), "leadership handed off")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.nodes[tc.waitLeader()].server().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if after := strings.Count(buf.String(), "leadership handed off"); after != before+1 {
		t.Fatalf("Shutdown of the leader did not hand off leadership (%d hand-offs logged before, %d after)", before, after)
	}
}
