package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/coordinator/api"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/internal/testutil"
)

// The test binary doubles as pct, vzdump and pveam for simulated nodes.
func TestMain(m *testing.M) {
	pvesim.RunAsTool()
	os.Exit(m.Run())
}

const debian = "debian-13-standard_13.6-1_amd64.tar.zst"

type testAgent struct {
	name   string
	dir    string
	sim    *simnode.Node
	agent  *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

// joinToken asks the API for a join token, waiting for the cluster CA.
func (tc *testCluster) joinToken(body any) string {
	tc.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out struct{ Token string }
		code, err := tc.call(tc.waitLeader(), "POST", "/api/v1/join-tokens", tc.token, body, nil, &out)
		if err == nil && code == http.StatusCreated {
			return out.Token
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("join token: %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tc *testCluster) grpcAddrs() []string {
	var out []string
	for _, n := range tc.nodes {
		out = append(out, n.cfg.GRPCAddr)
	}
	return out
}

// startAgent runs an in-process agent on a simulated node under dir.
func (tc *testCluster) startAgent(name, token, dir string, coordinators []string) *testAgent {
	tc.t.Helper()
	sim, err := simnode.Start(dir, name)
	if err != nil {
		tc.t.Fatal(err)
	}
	log, _ := tc.logger()
	a, err := agent.New(agent.Config{Node: name, Coordinators: coordinators, JoinToken: token, DataDir: dir,
		Runtime: sim.Runtime, Version: "test", Logger: log, InventoryEvery: 200 * time.Millisecond})
	if err != nil {
		tc.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{name: name, dir: dir, sim: sim, agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	tc.t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) stop() {
	if ta.cancel == nil {
		return
	}
	ta.cancel()
	<-ta.done
	ta.sim.Close()
	ta.cancel = nil
}

type nodeOut struct {
	Name          string
	Status        string
	LastHeartbeat *time.Time `json:"last_heartbeat"`
	MemFree       uint64     `json:"mem_free"`
	Capacity      struct {
		MemTotal uint64 `json:"mem_total"`
	}
}

func (tc *testCluster) nodes_() map[string]nodeOut {
	var out struct{ Items []nodeOut }
	if code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/nodes", tc.token, nil, nil, &out); err != nil || code != 200 {
		tc.t.Fatalf("GET /api/v1/nodes: %d %v", code, err)
	}
	m := map[string]nodeOut{}
	for _, n := range out.Items {
		m[n.Name] = n
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testutil.UntilTrue(t, d, what, cond)
}

func (tc *testCluster) leaderServer() *Server { return tc.nodes[tc.waitLeader()].server() }

// reserve takes a registry reservation on node.
func (tc *testCluster) reserve(host, node string) fsm.Reservation {
	tc.t.Helper()
	var r fsm.Reservation
	code, err := tc.call(tc.waitLeader(), "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": host, "node": node, "public_ports": 0}, nil, &r)
	if err != nil || code != http.StatusCreated {
		tc.t.Fatalf("reserve %s: %d %v", host, code, err)
	}
	return r
}

func (tc *testCluster) submitCreate(id, node string, res fsm.Reservation) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, err := tc.leaderServer().Agents().Submit(ctx, fsm.Task{ID: id, Node: node, Kind: taskspec.Create, ReservationID: res.ID},
			taskspec.CreateSpec{Template: debian, Hostname: res.Hostname, MemoryMB: 512, DiskGB: 2, Start: true})
		if err == nil || ctx.Err() != nil {
			if err != nil {
				tc.t.Fatalf("submit %s: %v", id, err)
			}
			return
		}
		time.Sleep(100 * time.Millisecond) // leader change: retry with the same task ID
	}
}

func (tc *testCluster) await(id string, d time.Duration) fsm.Task {
	tc.t.Helper()
	var t fsm.Task
	waitFor(tc.t.(*testing.T), "task "+id, d, func() bool {
		var ok bool
		for _, n := range tc.nodes {
			if s := n.server(); s != nil && s.Cluster().IsLeader() {
				s.Cluster().FSM().Read(func(st *fsm.State) { t, ok = st.Task(id) })
			}
		}
		return ok && t.State != fsm.TaskPending
	})
	return t
}

func TestAgentJoinWorkAndForeignVMIDs(t *testing.T) {
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) { cfg.NodeTTL, cfg.Heartbeat = time.Second, 100*time.Millisecond }))
	a1 := tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	tc.startAgent("pve2", tc.joinToken(map[string]any{"ttl_seconds": 600}), filepath.Join(tc.dir, "pve2"), tc.grpcAddrs())
	waitFor(t, "two ready nodes", 15*time.Second, func() bool {
		ns := tc.nodes_()
		return ns["pve1"].Status == "ready" && ns["pve2"].Status == "ready" && ns["pve1"].Capacity.MemTotal > 0 && ns["pve1"].LastHeartbeat != nil
	})

	// Work: create a container through a fenced task.
	r := tc.reserve("app-one", "pve1")
	tc.submitCreate("tsk_one", "pve1", r)
	if task := tc.await("tsk_one", 20*time.Second); task.State != fsm.TaskSucceeded || task.VMID != r.VMID {
		t.Fatalf("create task: %+v", task)
	}
	a1.sim.Store.View(func(n *pvesim.Node) error {
		ct := n.CTs[r.VMID]
		if ct == nil || ct.Status != "running" || !strings.Contains(ct.Config["tags"], taskspec.Tag("tsk_one")) || ct.Config["features"] != "nesting=1,keyctl=1" {
			t.Errorf("container after create: %+v", ct)
		}
		return nil
	})

	// A VMID taken behind our back between reservation and create: the
	// VMID becomes foreign and the work goes on with another one.
	r2 := tc.reserve("app-two", "pve1")
	if err := a1.sim.Store.Take(r2.VMID, false); err != nil {
		t.Fatal(err)
	}
	tc.submitCreate("tsk_two", "pve1", r2)
	task := tc.await("tsk_two", 20*time.Second)
	if task.State != fsm.TaskSucceeded || task.VMID == r2.VMID || task.Attempt != 2 {
		t.Fatalf("create on a taken VMID: %+v (taken %d)", task, r2.VMID)
	}
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		res, _ := st.Reservation(r2.ID)
		if !st.IsForeign(r2.VMID) || res.VMID != task.VMID {
			t.Errorf("registry: foreign=%v reservation=%+v", st.Foreign, res)
		}
	})

	// Inventory: a VM made by hand is foreign and never handed out.
	if err := a1.sim.Store.Take(r2.VMID+50, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "inventory marks the VM foreign", 10*time.Second, func() bool {
		var f bool
		tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) { f = st.IsForeign(r2.VMID + 50) })
		return f
	})
	// With only the foreign VMID and one more in the pool, the other one
	// is handed out.
	foreign := r2.VMID + 50
	if code, err := tc.call(tc.waitLeader(), "PUT", "/api/v1/settings/registry", tc.token,
		fsm.PoolSettings{VMIDMin: foreign, VMIDMax: foreign + 1, PortMin: 30000, PortMax: 30999}, nil, nil); err != nil || code != 200 {
		t.Fatalf("set pools: %d %v", code, err)
	}
	if r3 := tc.reserve("app-three", "pve2"); r3.VMID != foreign+1 {
		t.Fatalf("reserved VMID %d, want %d (the foreign %d must be skipped)", r3.VMID, foreign+1, foreign)
	}

	// Liveness: a stopped agent's node goes down after its TTL and comes
	// back when the agent returns (it rejoins with its saved certificate).
	a1.stop()
	waitFor(t, "pve1 down", 10*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "down" })
	tc.startAgent("pve1", "", a1.dir, tc.grpcAddrs())
	waitFor(t, "pve1 ready again", 10*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
}

func TestJoinTokensRefused(t *testing.T) {
	tc := newTestCluster(t, 1)
	// run runs an agent until it returns, or until d has passed and
	// joined (when set) holds.
	run := func(name, token string, d time.Duration, joined func() bool) error {
		sim, err := simnode.Start(filepath.Join(tc.dir, name), name)
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		log, _ := tc.logger()
		a, err := agent.New(agent.Config{Node: name, Coordinators: tc.grpcAddrs(), JoinToken: token, DataDir: filepath.Join(tc.dir, name), Runtime: sim.Runtime, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case err := <-done:
			return err
		case <-timer.C:
		}
		if joined != nil {
			waitFor(t, name+" joined", 20*time.Second, joined)
		}
		cancel()
		return <-done
	}
	const refusedWithin = 10 * time.Second
	tok := tc.joinToken(nil)
	// The first use joins (however long that takes on a loaded machine):
	// the node is ready and its certificate saved; the agent then stops
	// cleanly.
	joinedA := func() bool {
		_, err := os.Stat(filepath.Join(tc.dir, "node-a", "node.crt"))
		return err == nil && tc.nodes_()["node-a"].Status == "ready"
	}
	if err := run("node-a", tok, 2*time.Second, joinedA); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := run("node-b", tok, refusedWithin, nil); !errors.Is(err, agent.ErrJoinRefused) {
		t.Fatalf("reused token: %v", err)
	}
	pin := tc.leaderServer().Agents().CAPin()
	forged := "pxj_" + strings.Repeat("a", 32) + "_" + pin
	if err := run("node-c", forged, refusedWithin, nil); !errors.Is(err, agent.ErrJoinRefused) {
		t.Fatalf("forged token: %v", err)
	}
	wrongPin := tok[:len(tok)-64] + strings.Repeat("0", 64)
	if err := run("node-d", wrongPin, refusedWithin, nil); !errors.Is(err, agent.ErrJoinRefused) || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("wrong CA pin: %v", err)
	}
	// Expired: a token whose expiry has passed.
	expired := tc.expiredToken()
	if err := run("node-e", expired, refusedWithin, nil); !errors.Is(err, agent.ErrJoinRefused) {
		t.Fatalf("expired token: %v", err)
	}
	var nodes []string
	tc.leaderServer().Cluster().FSM().Read(func(st *fsm.State) {
		for _, n := range st.ListNodes() {
			nodes = append(nodes, n.Name)
		}
	})
	if fmt.Sprint(nodes) != "[node-a]" {
		t.Fatalf("enrolled nodes: %v", nodes)
	}
}

// expiredToken stores a token that expired a minute ago.
func (tc *testCluster) expiredToken() string {
	s := tc.leaderServer()
	tok := pki.NewToken(s.Agents().CAPin())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	res, err := s.Cluster().Propose(ctx, fsm.Command{Type: fsm.CmdJoinToken, RequestID: api.NewID("t_"), JoinToken: &fsm.JoinToken{
		ID: api.NewID("jtk_"), Hash: tok.Hash(), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Minute)}})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		tc.t.Fatal(err)
	}
	return tok.String()
}
