package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/testutil"
)

// thisBinary is proximity-coordinator built from this tree, once for the
// package's tests, in a directory TestMain removes.
var thisBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if thisBinary.dir != "" {
		_ = os.RemoveAll(thisBinary.dir)
	}
	os.Exit(code)
}

// buildThis returns the path of proximity-coordinator built from this
// tree.
func buildThis(t *testing.T) string {
	t.Helper()
	b := &thisBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "proximity-coordinator-test-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "proximity-coordinator")
		if out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// servers are three proximity-coordinator server processes, c1 to c3, on
// one random loopback address, formed with --bootstrap-expect 3 and
// sharing one cluster key. A server may be stopped and started again with
// another binary on its data directory. Every process is killed when the
// test ends; its standard error (errors only, or everything with -v) is
// kept in its data directory's parent and shown when the test fails.
type servers struct {
	t       *testing.T
	host    string
	dir     string
	keyFile string
	env     []string // added to each process's environment

	mu    sync.Mutex
	procs [3]*exec.Cmd

	token string
	cl    *http.Client
}

// newServers writes a cluster key with bin's keygen; start runs the
// servers.
func newServers(t *testing.T, bin string, env ...string) *servers {
	t.Helper()
	s := &servers{
		t:    t,
		host: fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250)),
		dir:  t.TempDir(),
		env:  env,
	}
	s.keyFile = filepath.Join(s.dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", "--out", s.keyFile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.procs {
			if p != nil && p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
		if t.Failed() {
			for i := range s.procs {
				if b, err := os.ReadFile(s.logFile(i)); err == nil && len(b) > 0 {
					t.Logf("c%d's standard error:\n%s", i+1, tail(b, 4000))
				}
			}
		}
	})
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// addr is server i's address for port off: 0 HTTP, 1 Raft, 2 gossip,
// 3 gRPC.
func (s *servers) addr(i, off int) string {
	return net.JoinHostPort(s.host, strconv.Itoa(7400+i*4+off))
}

func (s *servers) dataDir(i int) string { return filepath.Join(s.dir, fmt.Sprintf("c%d", i+1)) }

func (s *servers) logFile(i int) string { return filepath.Join(s.dir, fmt.Sprintf("c%d.log", i+1)) }

// start launches the three servers with bin, waits for the admin token
// and ca.pem one of them writes, and makes the HTTPS client (timeout the
// client's per request).
func (s *servers) start(bin string, timeout time.Duration) {
	t := s.t
	t.Helper()
	for i := range s.procs {
		s.launch(i, bin)
	}
	var caPEM []byte
	testutil.UntilTrue(t, 60*time.Second, "an admin token and ca.pem", func() bool {
		for i := range s.procs {
			if b, err := os.ReadFile(filepath.Join(s.dataDir(i), "admin.token")); err == nil {
				s.token = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(s.dataDir(i), "ca.pem")); err == nil {
				caPEM = b
			}
		}
		return s.token != "" && caPEM != nil
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	s.cl = &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// launch starts server i with bin on its data directory.
func (s *servers) launch(i int, bin string) {
	t := s.t
	t.Helper()
	cmd := exec.Command(bin, "server", "--node-id", fmt.Sprintf("c%d", i+1),
		"--data-dir", s.dataDir(i),
		"--http-addr", s.addr(i, 0), "--raft-addr", s.addr(i, 1), "--gossip-addr", s.addr(i, 2), "--grpc-addr", s.addr(i, 3),
		"--bootstrap-expect", "3", "--join", s.addr(0, 2), "--cluster-key-file", s.keyFile)
	level := "error"
	if testing.Verbose() {
		level = "info"
	}
	cmd.Env = append(append(os.Environ(), "PROXIMITY_LOG_LEVEL="+level), s.env...)
	logf, err := os.OpenFile(s.logFile(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "--- %s: %s\n", time.Now().Format(time.TimeOnly), bin)
	cmd.Stderr = logf
	err = cmd.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.procs[i] = cmd
	s.mu.Unlock()
}

// stop ends server i with SIGTERM (a leader hands leadership over first),
// or SIGKILL 20 s later.
func (s *servers) stop(i int) {
	s.t.Helper()
	s.signal(i, syscall.SIGTERM, 20*time.Second)
}

// kill ends server i with SIGKILL.
func (s *servers) kill(i int) {
	s.t.Helper()
	s.signal(i, syscall.SIGKILL, 20*time.Second)
}

func (s *servers) signal(i int, sig syscall.Signal, within time.Duration) {
	t := s.t
	t.Helper()
	s.mu.Lock()
	p := s.procs[i]
	s.mu.Unlock()
	if err := p.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		_ = p.Process.Kill()
		<-done
		t.Logf("c%d did not stop within %s of %s; killed", i+1, within, sig)
	}
}

// do sends a request to server i's API as the admin and decodes the
// answer into out.
func (s *servers) do(i int, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+s.addr(i, 0)+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

type member struct {
	ID       string `json:"id"`
	Suffrage string `json:"suffrage"`
	Protocol int    `json:"protocol"`
}

// clusterInfo is GET /api/v1/cluster; a server of the previous release
// reports no digest.
type clusterInfo struct {
	Leader struct {
		ID string `json:"id"`
	} `json:"leader"`
	Members      []member `json:"members"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	StateDigest  string   `json:"state_digest"`
	DigestIndex  uint64   `json:"digest_index"`
}

// leader is the index of the leader this answer names, or -1.
func (in clusterInfo) leader() int {
	j, err := strconv.Atoi(strings.TrimPrefix(in.Leader.ID, "c"))
	if err != nil || j < 1 || j > 3 {
		return -1
	}
	return j - 1
}

// healthy waits until server i answers with a leader and three voters.
func (s *servers) healthy(i int, within time.Duration) clusterInfo {
	t := s.t
	t.Helper()
	var in clusterInfo
	testutil.Until(t, within, fmt.Sprintf("c%d to answer with a leader and three voters", i+1), func() error {
		in = clusterInfo{}
		st, err := s.do(i, "GET", "/api/v1/cluster", nil, &in)
		if err != nil || st != 200 {
			return fmt.Errorf("GET /api/v1/cluster: %d %v", st, err)
		}
		voters := 0
		for _, m := range in.Members {
			if m.Suffrage == "voter" {
				voters++
			}
		}
		if in.Leader.ID == "" || voters != 3 {
			return fmt.Errorf("%+v", in)
		}
		return nil
	})
	return in
}

// caughtUp waits until server i has applied what server j had committed
// when it was asked, and returns server i's answer.
func (s *servers) caughtUp(i, j int, within time.Duration) clusterInfo {
	t := s.t
	t.Helper()
	in := s.healthy(i, within)
	other := s.healthy(j, 10*time.Second)
	testutil.Until(t, within, fmt.Sprintf("c%d to apply what c%d had committed (%d)", i+1, j+1, other.CommitIndex), func() error {
		if in = s.healthy(i, 10*time.Second); in.AppliedIndex < other.CommitIndex {
			return fmt.Errorf("applied %d", in.AppliedIndex)
		}
		return nil
	})
	return in
}

type res struct {
	ID       string `json:"id"`
	VMID     int    `json:"vmid"`
	Hostname string `json:"hostname"`
}

// list is every reservation server i lists, by hostname; a hostname or a
// VMID listed twice fails the test.
func (s *servers) list(i int) map[string]res {
	t := s.t
	t.Helper()
	seen := map[string]res{}
	vmids := map[int]bool{}
	for page := 1; ; page++ {
		var pg struct {
			Items []res `json:"items"`
			Total int   `json:"total"`
		}
		st, err := s.do(i, "GET", fmt.Sprintf("/api/v1/reservations?per_page=100&page=%d", page), nil, &pg)
		if err != nil || st != 200 {
			t.Fatalf("c%d: list reservations: %d %v", i+1, st, err)
		}
		for _, r := range pg.Items {
			if _, dup := seen[r.Hostname]; dup || vmids[r.VMID] {
				t.Fatalf("c%d lists %+v twice (hostname or VMID)", i+1, r)
			}
			seen[r.Hostname], vmids[r.VMID] = r, true
		}
		if len(pg.Items) == 0 || len(seen) >= pg.Total {
			return seen
		}
	}
}

// sameDigest waits until the three servers report their state at the same
// index and fails the test if the digests differ there.
func (s *servers) sameDigest(within time.Duration) {
	t := s.t
	t.Helper()
	var infos []clusterInfo
	testutil.Until(t, within, "the three servers to stand at the same index", func() error {
		infos = infos[:0]
		for i := range s.procs {
			infos = append(infos, s.healthy(i, 10*time.Second))
		}
		if infos[0].DigestIndex != infos[1].DigestIndex || infos[1].DigestIndex != infos[2].DigestIndex {
			return fmt.Errorf("at %d, %d and %d", infos[0].DigestIndex, infos[1].DigestIndex, infos[2].DigestIndex)
		}
		return nil
	})
	if infos[0].StateDigest == "" || infos[0].StateDigest != infos[1].StateDigest || infos[1].StateDigest != infos[2].StateDigest {
		t.Fatalf("the servers' states differ at index %d: %s %s %s", infos[0].DigestIndex,
			infos[0].StateDigest, infos[1].StateDigest, infos[2].StateDigest)
	}
	t.Logf("identical state digest %s at index %d", infos[0].StateDigest[:16], infos[0].DigestIndex)
}

// snapshotMeta is what Raft's file snapshot store keeps of a snapshot
// (raft/snapshots/ID/meta.json).
type snapshotMeta struct {
	ID    string
	Index uint64
	Term  uint64
}

// snapshots are the complete snapshots in server i's data directory,
// oldest first (the store keeps the last three).
func (s *servers) snapshots(i int) []snapshotMeta {
	dirs, _ := filepath.Glob(filepath.Join(s.dataDir(i), "raft", "snapshots", "*", "meta.json"))
	var out []snapshotMeta
	for _, p := range dirs {
		if strings.HasSuffix(filepath.Dir(p), ".tmp") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // reaped meanwhile
		}
		var m snapshotMeta
		if json.Unmarshal(b, &m) == nil && m.Index > 0 {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out
}

// load reserves without pause from a number of clients, each request
// retried under its request ID on any server until acknowledged.
type load struct {
	mu       sync.Mutex
	acked    map[string]res
	tried    map[string]bool
	failures int
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (s *servers) load(prefix string, clients int) *load {
	l := &load{acked: map[string]res{}, tried: map[string]bool{}, stop: make(chan struct{})}
	for w := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				host := fmt.Sprintf("%s-%d-%d", prefix, w, n)
				body := map[string]any{"request_id": "rq-" + host, "hostname": host, "node": "pve1"}
				l.mu.Lock()
				l.tried[host] = true
				l.mu.Unlock()
				for {
					var r res
					st, err := s.do(rand.IntN(3), "POST", "/api/v1/reservations", body, &r)
					if err == nil && (st == 201 || st == 200) {
						l.mu.Lock()
						l.acked[host] = r
						l.mu.Unlock()
						break
					}
					l.mu.Lock()
					l.failures++
					l.mu.Unlock()
					select {
					case <-l.stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	return l
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitMore waits until n more reservations are acknowledged.
func (l *load) waitMore(t *testing.T, n int) {
	t.Helper()
	target := l.count() + n
	testutil.Until(t, 30*time.Second, fmt.Sprintf("%d more reservations acknowledged", n), func() error {
		if c := l.count(); c < target {
			return fmt.Errorf("%d of %d", c, target)
		}
		return nil
	})
}

// end stops the clients and waits for them.
func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// ackedNow is a copy of what is acknowledged so far.
func (l *load) ackedNow() map[string]res {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]res, len(l.acked))
	for h, r := range l.acked {
		out[h] = r
	}
	return out
}

// check fails the test unless server i lists every reservation of acked
// as acknowledged, and nothing that was not at least tried.
func (l *load) check(t *testing.T, s *servers, i int, acked map[string]res) {
	t.Helper()
	seen := s.list(i)
	for h, a := range acked {
		if r, ok := seen[h]; !ok || r.ID != a.ID || r.VMID != a.VMID {
			t.Errorf("c%d: acknowledged %+v, lists %+v (%v)", i+1, a, r, ok)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for h := range seen {
		if !l.tried[h] {
			t.Errorf("c%d lists %s, which nobody asked for", i+1, h)
		}
	}
}
