package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// pinnedClient is what anyone who can reach the agent port has: a TLS
// connection that trusts the CA whose pin the handshake shows, and no
// certificate.
func pinnedClient(t *testing.T, addr, pin string) pb.AgentClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, VerifyPeerCertificate: pki.VerifyPinned(pin)})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewAgentClient(conn)
}

// idleCommitIndex waits until the leader's Raft commit index has stood
// still for a second (bootstrap writes the CA, the admin and the catalog)
// and returns it.
func (tc *testCluster) idleCommitIndex() uint64 {
	tc.t.Helper()
	r := tc.leaderServer().Cluster().Raft()
	last, since := r.CommitIndex(), time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			tc.t.Fatal("the Raft log never went idle")
		}
		time.Sleep(50 * time.Millisecond)
		if cur := r.CommitIndex(); cur != last {
			last, since = cur, time.Now()
		}
	}
	return last
}

// TestJoinFloodWritesNothing: 1,000 gRPC Join calls with made-up tokens
// (in the right format, with the CA pin the handshake shows) write no
// Raft entry: the leader checks the token against its state before it
// proposes, and each source address gets only a few Join calls a second
// (RESOURCE_EXHAUSTED beyond). A real join from the same address goes
// through once its bucket has refilled.
func TestJoinFloodWritesNothing(t *testing.T) {
	tc := newTestCluster(t, 1)
	good := tc.joinToken(nil) // waits for the cluster CA
	pin := tc.leaderServer().Agents().CAPin()
	_, csr, err := pki.NewKeyAndCSR("pve1")
	if err != nil {
		t.Fatal(err)
	}
	before := tc.idleCommitIndex()

	const calls, workers = 1000, 50
	clients := make([]pb.AgentClient, 4)
	for i := range clients {
		clients[i] = pinnedClient(t, tc.grpcAddrs()[0], pin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	codesSeen := map[codes.Code]int{}
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := clients[i%len(clients)].Join(ctx, &pb.JoinRequest{
					Token: pki.NewToken(pin).String(), Node: "pve1", CsrDer: csr, AgentVersion: "flood"})
				mu.Lock()
				codesSeen[status.Code(err)]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < calls; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond) // an entry in flight would be committed by now
	after := tc.leaderServer().Cluster().Raft().CommitIndex()
	t.Logf("%d joins with made-up tokens in %v: %v; commit index %d before, %d after", calls, took.Round(time.Millisecond), codesSeen, before, after)
	if codesSeen[codes.Unauthenticated]+codesSeen[codes.ResourceExhausted] != calls {
		t.Fatalf("answers other than UNAUTHENTICATED and RESOURCE_EXHAUSTED: %v", codesSeen)
	}
	if codesSeen[codes.ResourceExhausted] == 0 {
		t.Fatalf("no join was rate limited: %v", codesSeen)
	}
	if after != before {
		t.Fatalf("joins with made-up tokens wrote %d Raft entries (commit index %d → %d)", after-before, before, after)
	}
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		if n := st.ListNodes(); len(n) != 0 {
			t.Fatalf("the flood enrolled %v", n)
		}
	})

	// The address is not shut out: a real join gets through once its
	// bucket refills.
	c := pinnedClient(t, tc.grpcAddrs()[0], pin)
	for {
		_, err := c.Join(ctx, &pb.JoinRequest{Token: good, Node: "pve1", CsrDer: csr, AgentVersion: "test"})
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("a real join after the flood: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUnnamedTokenCannotReenrolAnExistingNode: a join token made for no
// node in particular, used with an enrolled node's name, is refused before
// anything is written; the node keeps its enrolment and its certificate
// still works. A token made for that node enrols it again.
func TestUnnamedTokenCannotReenrolAnExistingNode(t *testing.T) {
	tc := newTestCluster(t, 1)
	a := tc.startAgent("node-a", tc.joinToken(nil), filepath.Join(tc.dir, "node-a"), tc.grpcAddrs())
	waitFor(t, "node-a ready with its certificate", 15*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(a.dir, "node.crt"))
		return err == nil && tc.nodes_()["node-a"].Status == "ready"
	})
	enrolment := func() string {
		var n fsm.NodeRecord
		tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) { n, _ = st.Node("node-a") })
		return n.Enrolment
	}
	first := enrolment()
	unnamed := tc.joinToken(nil)
	named := tc.joinToken(map[string]any{"node": "node-a"})
	pin := tc.leaderServer().Agents().CAPin()
	before := tc.idleCommitIndex()

	_, csr, err := pki.NewKeyAndCSR("node-a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := pinnedClient(t, tc.grpcAddrs()[0], pin)
	_, err = c.Join(ctx, &pb.JoinRequest{Token: unnamed, Node: "node-a", CsrDer: csr, AgentVersion: "evil"})
	wantCode(t, "an unnamed token used as an enrolled node's name", err, codes.PermissionDenied)
	if after := tc.leaderServer().Cluster().Raft().CommitIndex(); after != before {
		t.Fatalf("the refused join wrote %d Raft entries", after-before)
	}
	if got := enrolment(); got != first {
		t.Fatalf("node-a re-enrolled: %s → %s", first, got)
	}
	if _, err := clientAs(t, a.dir, tc.grpcAddrs()[0], true).Report(ctx, &pb.ReportRequest{Node: "node-a", Heartbeat: &pb.Heartbeat{}}); err != nil {
		t.Fatalf("the real node's certificate after the attempt: %v", err)
	}
	if _, err := c.Join(ctx, &pb.JoinRequest{Token: named, Node: "node-a", CsrDer: csr, AgentVersion: "test"}); err != nil {
		t.Fatalf("a token made for node-a: %v", err)
	}
	if got := enrolment(); got == first {
		t.Fatal("the join with node-a's own token is not a new enrolment")
	}
}

// twoNodes starts agents for node-a and node-b, waits until both are
// ready, and stops both agents: the test then speaks with their
// certificates itself.
func twoNodes(t *testing.T, tc *testCluster) (a, b *testAgent) {
	t.Helper()
	a = tc.startAgent("node-a", tc.joinToken(nil), filepath.Join(tc.dir, "node-a"), tc.grpcAddrs())
	b = tc.startAgent("node-b", tc.joinToken(nil), filepath.Join(tc.dir, "node-b"), tc.grpcAddrs())
	waitFor(t, "both nodes ready with their certificates", 15*time.Second, func() bool {
		ns := tc.nodes_()
		_, ea := os.Stat(filepath.Join(a.dir, "node.crt"))
		_, eb := os.Stat(filepath.Join(b.dir, "node.crt"))
		return ea == nil && eb == nil && ns["node-a"].Status == "ready" && ns["node-b"].Status == "ready"
	})
	a.stop()
	b.stop()
	return a, b
}

// TestNodeCannotWriteAnotherNodesTaskLog: a report from node A that
// speaks of node B's task (a log line, progress or a result) is refused
// whole with PERMISSION_DENIED and changes nothing: not B's task log, not
// B's task, not even the heartbeat in the same batch. A's lines for its
// own task are kept; lines for a task nobody has are dropped.
func TestNodeCannotWriteAnotherNodesTaskLog(t *testing.T) {
	tc := newTestCluster(t, 1)
	a, _ := twoNodes(t, tc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agents := tc.leaderServer().Agents()
	taskB, err := agents.Submit(ctx, fsm.Task{ID: "tsk_b", Node: "node-b", Kind: taskspec.Start, VMID: 12345}, nil)
	if err != nil {
		t.Fatal(err)
	}
	taskA, err := agents.Submit(ctx, fsm.Task{ID: "tsk_a", Node: "node-a", Kind: taskspec.Start, VMID: 12346}, nil)
	if err != nil {
		t.Fatal(err)
	}
	asA := clientAs(t, a.dir, tc.grpcAddrs()[0], true)
	hb := func() time.Time { li, _ := agents.NodeLive("node-a"); return li.LastHeartbeat }
	before := hb()

	evil := []*pb.TaskEvent{
		{TaskId: taskB.ID, Fence: taskB.Fence, Event: &pb.TaskEvent_Log{Log: "written by node-a"}},
		{TaskId: taskB.ID, Fence: taskB.Fence, Event: &pb.TaskEvent_Progress{Progress: &pb.Progress{Step: "by node-a"}}},
		{TaskId: taskB.ID, Fence: taskB.Fence, Event: &pb.TaskEvent_Result{Result: &pb.Result{Ok: true}}},
	}
	for i, ev := range evil {
		_, err := asA.Report(ctx, &pb.ReportRequest{Node: "node-a", Heartbeat: &pb.Heartbeat{AgentVersion: "evil"},
			Events: []*pb.TaskEvent{{TaskId: taskA.ID, Fence: taskA.Fence, Event: &pb.TaskEvent_Log{Log: "mine"}}, ev}})
		wantCode(t, "node-a reports on node-b's task (event "+strconv.Itoa(i)+")", err, codes.PermissionDenied)
	}
	if l := agents.TaskLog(taskB.ID); len(l) != 0 {
		t.Fatalf("node-b's task log holds node-a's lines: %q", l)
	}
	if l := agents.TaskLog(taskA.ID); len(l) != 0 {
		t.Fatalf("a refused batch left lines in node-a's own task log: %q", l)
	}
	if got := hb(); !got.Equal(before) {
		t.Fatalf("a refused batch re-armed node-a's heartbeat (%v → %v)", before, got)
	}
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		if got, _ := st.Task(taskB.ID); got.State != fsm.TaskPending {
			t.Fatalf("node-b's task after node-a's report: %+v", got)
		}
	})

	resp, err := asA.Report(ctx, &pb.ReportRequest{Node: "node-a", Events: []*pb.TaskEvent{
		{TaskId: taskA.ID, Fence: taskA.Fence, Event: &pb.TaskEvent_Log{Log: "mine"}},
		{TaskId: "tsk_nobodys", Fence: 1, Event: &pb.TaskEvent_Log{Log: "into the void"}},
		{TaskId: "tsk_nobodys", Fence: 1, Event: &pb.TaskEvent_Result{Result: &pb.Result{Ok: true}}},
	}})
	if err != nil {
		t.Fatalf("node-a reports on its own task: %v", err)
	}
	if !slices.Equal(resp.Refused, []string{"tsk_nobodys"}) {
		t.Fatalf("refused: %v", resp.Refused)
	}
	if l := agents.TaskLog(taskA.ID); !slices.Equal(l, []string{"mine"}) {
		t.Fatalf("node-a's own task log: %q", l)
	}
	if l := agents.TaskLog("tsk_nobodys"); len(l) != 0 {
		t.Fatalf("lines kept for a task nobody has: %q", l)
	}
}

// TestNodeReportsOnlyWhatItHolds: node A's inventory cannot claim a VMID
// the registry holds for node B: it is left out of A's containers (so it
// is not offered as an unmanaged container of A), while A's own
// unmanaged container is reported as usual.
func TestNodeReportsOnlyWhatItHolds(t *testing.T) {
	tc := newTestCluster(t, 1)
	a, _ := twoNodes(t, tc)
	held := tc.reserve("held-by-b", "node-b")
	own := held.VMID + 1000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	asA := clientAs(t, a.dir, tc.grpcAddrs()[0], true)
	if _, err := asA.Report(ctx, &pb.ReportRequest{Node: "node-a", Heartbeat: &pb.Heartbeat{},
		Inventory: &pb.Inventory{Vmids: []uint32{uint32(held.VMID), uint32(own)}, Guests: []*pb.Guest{
			{Vmid: uint32(held.VMID), Name: "claimed", Status: "running", Cpu: 0.99, Mem: 1 << 30},
			{Vmid: uint32(own), Name: "by-hand", Status: "running"},
		}}}); err != nil {
		t.Fatalf("node-a's inventory: %v", err)
	}
	li, _ := tc.leaderServer().Agents().NodeLive("node-a")
	var vmids []int
	for _, g := range li.Guests {
		vmids = append(vmids, int(g.Vmid))
	}
	if !slices.Equal(vmids, []int{own}) {
		t.Fatalf("node-a's containers as the leader keeps them: %v (node-b holds %d)", vmids, held.VMID)
	}
	var disc struct {
		Items []struct {
			Node string
			VMID int
		}
	}
	if code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/discover", tc.token, nil, nil, &disc); err != nil || code != 200 {
		t.Fatalf("discover: %d %v", code, err)
	}
	for _, it := range disc.Items {
		if it.VMID == held.VMID {
			t.Fatalf("node-b's VMID %d offered as an unmanaged container of %s", held.VMID, it.Node)
		}
	}
	if len(disc.Items) != 1 || disc.Items[0].Node != "node-a" || disc.Items[0].VMID != own {
		t.Fatalf("discover: %+v", disc.Items)
	}
	waitFor(t, "node-a's own VMID marked foreign", 10*time.Second, func() bool {
		var f bool
		tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) { f = st.IsForeign(own) })
		return f
	})
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		if st.IsForeign(held.VMID) {
			t.Fatalf("node-b's VMID %d marked foreign", held.VMID)
		}
	})
}

// TestFailedAuthIsThrottled: after a burst of failed authentications from
// one address, further requests from it with a wrong token get 429 in the
// one error format, with Retry-After; a valid token from the same address
// keeps working throughout. Failures are logged at warn with the address,
// a few lines, never the token.
func TestFailedAuthIsThrottled(t *testing.T) {
	buf := &lockedBuffer{}
	tc := newTestClusterWith(t, 1, logsTo(buf))
	const wrong = "pxt_wrong0123456789abcdef0123456789abcdef"
	counts := map[int]int{}
	first429 := -1
	start := time.Now()
	// refills is how many more failures the address may have had by now:
	// one a second after the burst.
	refills := func() int { return int(time.Since(start).Seconds()) + 1 }
	for i := 0; i < 500; i++ {
		st, h, body := tc.raw(0, "GET", "/api/v1/reservations", wrong, "", nil)
		counts[st]++
		switch st {
		case http.StatusUnauthorized:
			if counts[st] > 10+refills() {
				t.Fatalf("request %d: %d failures answered 401 within %v", i, counts[st], time.Since(start))
			}
		case http.StatusTooManyRequests:
			if first429 < 0 {
				first429 = i
				if first429 < 10 || first429 > 10+refills() {
					t.Fatalf("throttling began at request %d, want 10 (after a burst of 10) or a little later", first429)
				}
			}
			p := assertProblem(t, st, h, body, http.StatusTooManyRequests)
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", h.Get("Retry-After"))
			}
			if !strings.Contains(p.Type, "too-many-requests") {
				t.Fatalf("problem type %q", p.Type)
			}
		default:
			t.Fatalf("request %d with a wrong token: %d %s", i, st, body)
		}
		if i%25 == 0 {
			if st, _, body := tc.raw(0, "GET", "/api/v1/reservations", tc.token, "", nil); st != http.StatusOK {
				t.Fatalf("request %d, the valid token from the same address: %d %s", i, st, body)
			}
		}
	}
	t.Logf("500 wrong tokens in %v: %v; the first 429 at request %d", time.Since(start).Round(time.Millisecond), counts, first429)
	if first429 < 0 {
		t.Fatal("never throttled")
	}
	logged := buf.String()
	if strings.Contains(logged, wrong) || strings.Contains(logged, tc.token) {
		t.Fatal("a token is in the log")
	}
	lines := strings.Count(logged, "authentication failed")
	if lines == 0 || lines > 50 {
		t.Fatalf("%d log lines about failed authentications for 500 failures", lines)
	}
	if !strings.Contains(logged, "remote=127.0.0.1") || !strings.Contains(logged, "level=WARN msg=\"authentication failed\"") {
		t.Fatalf("the failure log lines do not name the address at warn level:\n%s", lastLines(logged, "authentication failed", 3))
	}
}

// lastLines returns up to n of the log lines that contain s.
func lastLines(log, s string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}
