package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/testutil"
)

// testCluster runs n coordinator servers in this process on a private
// loopback address (127.x.y.z), with real Raft on disk, real gossip and
// real HTTP.
type testCluster struct {
	t    testing.TB
	host string
	dir  string
	// keyFile is the cluster key file every server of the cluster shares.
	keyFile string
	nodes   []*testNode
	token   string
	http    *http.Client
	// clock is the API's clock of this cluster's servers.
	clock *clock
	// logs, when set, receives every log of the cluster's servers and
	// agents at debug level (logsTo).
	logs io.Writer
	// serverOpts configure the servers the cluster boots with.
	serverOpts []func(cfg *Config)
}

type testNode struct {
	cfg Config
	mu  sync.Mutex
	srv *Server
}

func (n *testNode) server() *Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

func (n *testNode) url() string { return "https://" + n.cfg.HTTPAddr }

// clock is the API's clock in tests: real time plus an offset a test may
// move forward. Each cluster has its own, so tests that move it can run
// beside others.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock forward until the test ends.
func (c *clock) advance(t testing.TB, d time.Duration) {
	c.offset.Add(int64(d))
	t.Cleanup(func() { c.offset.Store(0) })
}

// testPasswordParams make password hashing cheap in tests (the format and
// the checks are the same).
var testPasswordParams = auth.Params{Time: 1, MemoryKiB: 1024, Threads: 1, KeyLen: 32}

// logger is the log of the cluster's servers and agents: to tc.logs at
// debug level when a test captures them (logsTo); otherwise quiet, and
// on stderr at debug level with PROXIMITY_TEST_LOG=1.
func (tc *testCluster) logger() (*slog.Logger, io.Writer) {
	if tc.logs != nil {
		return slog.New(slog.NewTextHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), tc.logs
	}
	if os.Getenv("PROXIMITY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})), os.Stderr
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard
}

// freeLoopbackHost picks a random 127.x.y.z on which ports 7100-7200 are
// free, so parallel test binaries never collide.
func freeLoopbackHost(t testing.TB) string {
	for i := 0; i < 50; i++ {
		host := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
		l, err := net.Listen("tcp", net.JoinHostPort(host, "7100"))
		if err == nil {
			l.Close()
			return host
		}
	}
	t.Fatal("no free loopback address")
	return ""
}

// parallel marks a top-level test that starts clusters as parallel, once.
// Such tests spend most of their time waiting (elections, heartbeats, the
// controller's steps), each on its own loopback address and with its own
// logs, so they run side by side (go test -parallel).
func parallel(t testing.TB) {
	tt, ok := t.(*testing.T)
	if !ok || strings.Contains(tt.Name(), "/") {
		return
	}
	if _, done := parallelTests.LoadOrStore(tt, true); !done {
		tt.Parallel()
	}
}

var parallelTests sync.Map

func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n)
}

// A clusterOpt configures a test cluster before its servers first start,
// so that a test needs no restart to change a setting.
type clusterOpt func(tc *testCluster)

// withServers changes the configuration of every server the cluster
// boots with (a server added later with addJoiner keeps the harness's).
func withServers(f func(cfg *Config)) clusterOpt {
	return func(tc *testCluster) { tc.serverOpts = append(tc.serverOpts, f) }
}

// logsTo sends every log of the cluster's servers and of the agents it
// starts to w, at debug level.
func logsTo(w io.Writer) clusterOpt {
	return func(tc *testCluster) { tc.logs = w }
}

// newTestClusterWith is newTestCluster configured by opts.
func newTestClusterWith(t testing.TB, n int, opts ...clusterOpt) *testCluster {
	t.Helper()
	parallel(t)
	tc := &testCluster{t: t, host: freeLoopbackHost(t), dir: t.TempDir(), clock: &clock{}}
	for _, o := range opts {
		o(tc)
	}
	tc.keyFile = filepath.Join(tc.dir, "cluster.key")
	if _, err := cluster.WriteNewKeyFile(tc.keyFile); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		node := tc.nodeConfig(i, n)
		for _, f := range tc.serverOpts {
			f(&node.cfg)
		}
		tc.nodes = append(tc.nodes, node)
	}
	for i := range tc.nodes {
		tc.start(i)
	}
	t.Cleanup(tc.stopAll)
	tc.waitLeader()
	tc.token = tc.waitToken()
	tc.http = tc.verifiedClient()
	tc.waitCatalog()
	return tc
}

// waitCatalog waits until the new cluster's leader has put the starter
// catalog in the state, as a person would before deploying.
func (tc *testCluster) waitCatalog() {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			if n.srv == nil {
				continue
			}
			loaded := false
			n.srv.cl.FSM().Read(func(s *fsm.State) { loaded = s.Catalog != nil })
			if loaded {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("the starter catalog was not loaded")
}

// verifiedClient is an HTTPS client that trusts the cluster CA only, from
// the ca.pem every server writes; it waits until every running server
// has written it (and so serves HTTPS).
func (tc *testCluster) verifiedClient() *http.Client {
	tc.t.Helper()
	var pem []byte
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range tc.nodes {
		if n.server() == nil {
			continue
		}
		for {
			b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, CACertFile))
			if err == nil && n.server().Agents().CA() != nil {
				pem = b
				break
			}
			if time.Now().After(deadline) {
				tc.t.Fatalf("%s wrote no %s", n.cfg.NodeID, CACertFile)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		tc.t.Fatalf("%s holds no certificate", CACertFile)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
}

func (tc *testCluster) nodeConfig(i, expect int) *testNode {
	base := 7100 + i*4
	addr := func(off int) string { return net.JoinHostPort(tc.host, strconv.Itoa(base+off)) }
	log, out := tc.logger()
	cfg := Config{
		NodeID: fmt.Sprintf("c%d", i+1), DataDir: filepath.Join(tc.dir, fmt.Sprintf("c%d", i+1)),
		HTTPAddr: addr(0), RaftAddr: addr(1), GossipAddr: addr(2), GRPCAddr: addr(3),
		ClusterKeyFile: tc.keyFile, Timing: cluster.TestTiming(), PasswordParams: &testPasswordParams, Now: tc.clock.now, Logger: log.With("server", i+1), LogOutput: out,
	}
	if v, err := strconv.Atoi(os.Getenv("PROXIMITY_TEST_INFLIGHT")); err == nil {
		cfg.Proposer.MaxInflight = v
	}
	if expect == 1 {
		cfg.Timing = singleTiming()
	}
	if expect > 1 {
		cfg.BootstrapExpect = expect
		cfg.Join = []string{net.JoinHostPort(tc.host, strconv.Itoa(7100+2))}
	}
	return &testNode{cfg: cfg}
}

// singleTiming is the Raft timing of a one-server cluster: it elects
// itself after one heartbeat timeout, which a cluster of one can keep
// short (it has no follower to lose contact with). A test that adds a
// voter to it gives it cluster.TestTiming (withServers).
func singleTiming() cluster.Timing {
	t := cluster.TestTiming()
	t.Heartbeat, t.Election, t.LeaderLease = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	return t
}

// addJoiner configures (without starting) one more server that joins the
// cluster through the first server's gossip address, with --join only.
func (tc *testCluster) addJoiner() *testNode {
	n := tc.nodeConfig(len(tc.nodes), 0)
	n.cfg.Join = []string{tc.nodes[0].cfg.GossipAddr}
	tc.nodes = append(tc.nodes, n)
	return n
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	n := tc.nodes[i]
	var srv *Server
	var err error
	// A just-closed port can take a moment to be free again.
	for try := 0; try < 50; try++ {
		if srv, err = Start(n.cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tc.t.Fatalf("start %s: %v", n.cfg.NodeID, err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

// kill stops server i abruptly.
func (tc *testCluster) kill(i int) {
	n := tc.nodes[i]
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Kill()
	}
}

func (tc *testCluster) stopAll() {
	for i := range tc.nodes {
		tc.kill(i)
	}
	if tc.http != nil {
		tc.http.CloseIdleConnections()
	}
}

// leader returns the index of the node that is leader and ready.
func (tc *testCluster) leader() int {
	for i, n := range tc.nodes {
		if s := n.server(); s != nil && s.Cluster().IsLeader() {
			return i
		}
	}
	return -1
}

func (tc *testCluster) waitLeader() int {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if i := tc.leader(); i >= 0 {
			return i
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no leader within 30s")
	return -1
}

func (tc *testCluster) waitToken() string {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, n := range tc.nodes {
			b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, AdminTokenFile))
			if err == nil && len(b) > 0 {
				return string(bytes.TrimSpace(b))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no admin token written")
	return ""
}

// call sends one request to node i and decodes a JSON answer into out.
func (tc *testCluster) call(i int, method, path, token string, body any, hdr map[string]string, out any) (int, error) {
	return doJSON(tc.http, tc.nodes[i].url(), method, path, token, body, hdr, out)
}

func doJSON(c *http.Client, base, method, path, token string, body any, hdr map[string]string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// reservation is the wire shape of a reservation.
type reservation struct {
	ID          string `json:"id"`
	VMID        int    `json:"vmid"`
	Hostname    string `json:"hostname"`
	Node        string `json:"node"`
	PublicPorts []int  `json:"public_ports"`
	IP          string `json:"ip"`
	Owner       string `json:"owner"`
	Index       uint64 `json:"index"`
}

type reservationPage struct {
	Items   []reservation `json:"items"`
	Total   int           `json:"total"`
	Page    int           `json:"page"`
	PerPage int           `json:"per_page"`
}

// listAll reads every reservation through node i.
func (tc *testCluster) listAll(i int) []reservation {
	tc.t.Helper()
	var all []reservation
	for page := 1; ; page++ {
		var p reservationPage
		// 503: no leader known yet, or this server is behind its commit
		// index (just restarted); it asks to retry.
		testutil.Until(tc.t, 30*time.Second, "the reservations list", func() error {
			st, err := tc.call(i, "GET", fmt.Sprintf("/api/v1/reservations?page=%d&per_page=100", page), tc.token, nil, nil, &p)
			if err == nil && st != 200 && st != 503 {
				tc.t.Fatalf("list reservations: %d", st)
			}
			if err != nil || st != 200 {
				return fmt.Errorf("list reservations: %d %v", st, err)
			}
			return nil
		})
		all = append(all, p.Items...)
		if len(all) >= p.Total || len(p.Items) == 0 {
			return all
		}
	}
}

type problemDoc struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}
