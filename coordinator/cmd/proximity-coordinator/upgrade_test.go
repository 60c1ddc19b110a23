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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// previousRelease is the commit whose binary the rolling-upgrade test
// upgrades from: the tree at the end of the previous issue (0.4.0 before
// servers announced a protocol). Move it forward when a release is tagged.
const previousRelease = "b04dd46"

// buildPrevious builds proximity-coordinator at previousRelease from a
// detached worktree of this repository. The binary is kept in the user's
// cache directory under the commit and the Go version, so only the first
// run pays for the build; -trimpath lets the worktree's packages hit Go's
// build cache wherever the worktree is. It skips the test when the commit
// is not available (a shallow clone, no git).
func buildPrevious(t *testing.T) string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("no git to build the previous release (%s) from: %v", previousRelease, err)
	}
	out, err := exec.Command(git, "rev-parse", "--verify", "--quiet", previousRelease+"^{commit}").Output()
	if err != nil {
		t.Skipf("commit %s of the previous release is not in this clone (shallow?): %v", previousRelease, err)
	}
	full := strings.TrimSpace(string(out))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "proximity", "upgrade-test", full+"-"+runtime.Version())
	bin := filepath.Join(dir, "proximity-coordinator")
	if _, err := os.Stat(bin); err == nil {
		t.Logf("previous release %s: cached binary %s", previousRelease, bin)
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wt := filepath.Join(t.TempDir(), "previous")
	start := time.Now()
	if out, err := exec.Command(git, "worktree", "add", "--detach", wt, full).CombinedOutput(); err != nil {
		t.Skipf("git worktree add %s: %v\n%s", previousRelease, err, out)
	}
	defer func() {
		if out, err := exec.Command(git, "worktree", "remove", "--force", wt).CombinedOutput(); err != nil {
			t.Logf("git worktree remove: %v\n%s", err, out)
		}
	}()
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", tmp, "./coordinator/cmd/proximity-coordinator")
	build.Dir = wt
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release %s: %v\n%s", previousRelease, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("previous release %s built in %s", previousRelease, time.Since(start).Round(time.Millisecond))
	return bin
}

// TestRollingUpgrade runs three servers of the previous release with
// --bootstrap-expect 3, reserves through them without pause, and replaces
// one server at a time (SIGTERM, then this version's binary on the same
// data directory) while the reservations go on. Every acknowledged
// reservation must be listed once by every server, nothing unacknowledged
// may appear from nowhere, the upgraded servers must see the old ones at
// the base protocol and each other at this one, and the three servers must
// end with the same state digest at the same index.
func TestRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs real processes")
	}
	start := time.Now()
	oldBin := buildPrevious(t)
	newBin := filepath.Join(t.TempDir(), "proximity-coordinator")
	if out, err := exec.Command("go", "build", "-o", newBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Logf("binaries ready in %s", time.Since(start).Round(time.Millisecond))

	host := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	if out, err := exec.Command(oldBin, "keygen", "--out", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	addr := func(i, off int) string { return net.JoinHostPort(host, strconv.Itoa(7400+i*4+off)) }
	var procMu sync.Mutex
	procs := make([]*exec.Cmd, 3)
	launch := func(i int, bin string) {
		cmd := exec.Command(bin, "server", "--node-id", fmt.Sprintf("c%d", i+1),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("c%d", i+1)),
			"--http-addr", addr(i, 0), "--raft-addr", addr(i, 1), "--gossip-addr", addr(i, 2), "--grpc-addr", addr(i, 3),
			"--bootstrap-expect", "3", "--join", addr(0, 2), "--cluster-key-file", keyFile)
		cmd.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=error")
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procMu.Lock()
		procs[i] = cmd
		procMu.Unlock()
	}
	for i := range procs {
		launch(i, oldBin)
	}
	t.Cleanup(func() {
		procMu.Lock()
		defer procMu.Unlock()
		for _, p := range procs {
			if p != nil && p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	})
	var token string
	var caPEM []byte
	deadline := time.Now().Add(60 * time.Second)
	for (token == "" || caPEM == nil) && time.Now().Before(deadline) {
		for i := 1; i <= 3; i++ {
			if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "admin.token")); err == nil {
				token = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "ca.pem")); err == nil {
				caPEM = b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if token == "" || caPEM == nil {
		t.Fatal("no admin token and ca.pem within 60s")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(i int, method, path string, body any, out any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "https://"+addr(i, 0)+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
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
	type clusterInfo struct {
		Leader struct {
			ID string `json:"id"`
		} `json:"leader"`
		Members      []member `json:"members"`
		AppliedIndex uint64   `json:"applied_index"`
		StateDigest  string   `json:"state_digest"`
		DigestIndex  uint64   `json:"digest_index"`
	}
	// healthy waits until server i answers with a leader and three voters.
	healthy := func(i int, within time.Duration) clusterInfo {
		t.Helper()
		var in clusterInfo
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			in = clusterInfo{}
			if st, err := do(i, "GET", "/api/v1/cluster", nil, &in); err == nil && st == 200 && in.Leader.ID != "" {
				voters := 0
				for _, m := range in.Members {
					if m.Suffrage == "voter" {
						voters++
					}
				}
				if voters == 3 {
					return in
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("server c%d: no leader and three voters within %s: %+v", i+1, within, in)
		return in
	}
	for i := range procs {
		healthy(i, 60*time.Second)
	}
	t.Logf("previous release's cluster formed at %s", time.Since(start).Round(time.Millisecond))

	// The load: reservations one after another from two clients, each
	// retried under its request ID until acknowledged, on any server.
	type res struct {
		ID       string `json:"id"`
		VMID     int    `json:"vmid"`
		Hostname string `json:"hostname"`
	}
	var mu sync.Mutex
	acked := map[string]res{}
	tried := map[string]bool{}
	failures := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				host := fmt.Sprintf("up-%d-%d", w, n)
				body := map[string]any{"request_id": "rq-" + host, "hostname": host, "node": "pve1"}
				mu.Lock()
				tried[host] = true
				mu.Unlock()
				for {
					var r res
					st, err := do(rand.IntN(3), "POST", "/api/v1/reservations", body, &r)
					if err == nil && (st == 201 || st == 200) {
						mu.Lock()
						acked[host] = r
						mu.Unlock()
						break
					}
					mu.Lock()
					failures++
					mu.Unlock()
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitMore := func(n int) {
		t.Helper()
		target := count() + n
		deadline := time.Now().Add(30 * time.Second)
		for count() < target {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d reservations acknowledged within 30s (%d)", n, count())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMore(20)
	for i := range procs {
		procMu.Lock()
		p := procs[i]
		procMu.Unlock()
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.Process.Kill()
			<-done
			t.Logf("c%d did not stop within 20s of SIGTERM; killed", i+1)
		}
		waitMore(5) // the two others go on while it is down
		launch(i, newBin)
		in := healthy(i, 60*time.Second)
		// It catches up with what another server has applied (as
		// docs/operations.md says to wait for before the next).
		other := healthy((i+1)%3, 10*time.Second)
		for in.AppliedIndex < other.AppliedIndex {
			time.Sleep(50 * time.Millisecond)
			in = healthy(i, 10*time.Second)
		}
		// The upgraded server hears the others announce: the old ones
		// announce no protocol (the base), the upgraded ones this one.
		deadline := time.Now().Add(20 * time.Second)
		for {
			want := true
			for _, m := range in.Members {
				j, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "c"))
				p := 1 // fsm.BaseProtocol
				if j-1 <= i {
					p = 2 // fsm.ProtocolVersion
				}
				want = want && m.Protocol == p
			}
			if want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("c%d sees the members' protocols as %+v", i+1, in.Members)
			}
			time.Sleep(100 * time.Millisecond)
			in = healthy(i, 10*time.Second)
		}
		waitMore(50) // mixed versions under load
		t.Logf("c%d upgraded at %s; %d reservations acknowledged", i+1, time.Since(start).Round(time.Millisecond), count())
	}
	close(stop)
	wg.Wait()

	// Every server lists exactly what was acknowledged, plus at most
	// requests that were tried and not yet answered when the load stopped.
	for i := range procs {
		seen := map[string]res{}
		vmids := map[int]bool{}
		for page := 1; ; page++ {
			var pg struct {
				Items []res `json:"items"`
				Total int   `json:"total"`
			}
			st, err := do(i, "GET", fmt.Sprintf("/api/v1/reservations?per_page=100&page=%d", page), nil, &pg)
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
				break
			}
		}
		mu.Lock()
		for h, a := range acked {
			if r, ok := seen[h]; !ok || r.ID != a.ID || r.VMID != a.VMID {
				t.Errorf("c%d: acknowledged %+v, lists %+v (%v)", i+1, a, r, ok)
			}
		}
		for h := range seen {
			if _, ok := acked[h]; !ok && !tried[h] {
				t.Errorf("c%d lists %s, which nobody asked for", i+1, h)
			}
		}
		mu.Unlock()
	}
	// The three servers end with the same state at the same index.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var infos []clusterInfo
		for i := range procs {
			infos = append(infos, healthy(i, 10*time.Second))
		}
		if infos[0].DigestIndex == infos[1].DigestIndex && infos[1].DigestIndex == infos[2].DigestIndex {
			if infos[0].StateDigest == "" || infos[0].StateDigest != infos[1].StateDigest || infos[1].StateDigest != infos[2].StateDigest {
				t.Fatalf("the servers' states differ at index %d: %s %s %s", infos[0].DigestIndex,
					infos[0].StateDigest, infos[1].StateDigest, infos[2].StateDigest)
			}
			t.Logf("identical state digest %s at index %d", infos[0].StateDigest[:16], infos[0].DigestIndex)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers never stood at the same index: %d %d %d", infos[0].DigestIndex, infos[1].DigestIndex, infos[2].DigestIndex)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	t.Logf("%d reservations acknowledged, %d attempts refused or failed during the upgrade; %s in all",
		len(acked), failures, time.Since(start).Round(time.Millisecond))
	mu.Unlock()
}
