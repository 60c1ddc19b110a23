package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/internal/testutil"
)

func TestSingleServerBootstrapsAndKeepsStateAcrossRestart(t *testing.T) {
	tc := newTestCluster(t, 1)
	info, err := os.Stat(filepath.Join(tc.nodes[0].cfg.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v, want 0600", info.Mode().Perm())
	}
	var r reservation
	st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "solo", "node": "pve1", "public_ports": 1}, nil, &r)
	if err != nil || st != 201 {
		t.Fatalf("reserve: %d %v", st, err)
	}
	tc.kill(0)
	tc.start(0)
	tc.waitLeader()
	var got reservation
	st, err = tc.call(0, "GET", "/api/v1/reservations/"+r.ID, tc.token, nil, nil, &got)
	if err != nil || st != 200 {
		t.Fatalf("get after restart: %d %v", st, err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Fatalf("reservation changed across restart (-before +after):\n%s", d)
	}
}

func TestThreeServersFormClusterAndForward(t *testing.T) {
	tc := newTestCluster(t, 3)
	var infos []cluster.Info
	for i := range tc.nodes {
		var in cluster.Info
		// Wait for every server to see all three members and the leader's
		// HTTP address, and to be ready (a follower is once it has applied
		// up to the leader's commit index).
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := tc.call(i, "GET", "/api/v1/cluster", tc.token, nil, nil, &in)
			ready, _ := tc.call(i, "GET", "/readyz", "", nil, nil, nil)
			if err == nil && st == 200 && len(in.Members) == 3 && in.Leader.HTTPAddr != "" && allHaveHTTP(in) && ready == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d cluster view: %d %v %+v, /readyz %d", i, st, err, in, ready)
			}
			time.Sleep(50 * time.Millisecond)
		}
		infos = append(infos, in)
	}
	for _, in := range infos[1:] {
		if in.Leader.ID != infos[0].Leader.ID {
			t.Fatalf("servers disagree on the leader: %s vs %s", in.Leader.ID, infos[0].Leader.ID)
		}
	}
	for _, m := range infos[0].Members {
		if m.Suffrage != "voter" {
			t.Fatalf("member %s is %s", m.ID, m.Suffrage)
		}
	}
	// A write through every server, and a read of it through every other.
	for i := range tc.nodes {
		var r reservation
		st, err := tc.call(i, "POST", "/api/v1/reservations", tc.token,
			map[string]any{"hostname": fmt.Sprintf("via-%d", i), "node": "pve1"}, nil, &r)
		if err != nil || st != 201 {
			t.Fatalf("reserve through server %d: %d %v", i, st, err)
		}
		for j := range tc.nodes {
			var got reservation
			if st, err := tc.call(j, "GET", "/api/v1/reservations/"+r.ID, tc.token, nil, nil, &got); err != nil || st != 200 || got.VMID != r.VMID {
				t.Fatalf("read through server %d of a write through %d: %d %v %+v", j, i, st, err, got)
			}
		}
	}
}

func allHaveHTTP(in cluster.Info) bool {
	for _, m := range in.Members {
		if m.HTTPAddr == "" {
			return false
		}
	}
	return true
}

// TestAuditFinding09And10ConcurrentReservationsOneWinnerPerHostname sends
// 1,000 concurrent reservations for 250 hostnames (four contenders each)
// to all three servers.
func TestAuditFinding09And10ConcurrentReservationsOneWinnerPerHostname(t *testing.T) {
	tc := newTestCluster(t, 3)
	const total, hosts = 1000, 250
	type answer struct {
		status int
		r      reservation
	}
	answers := make([]answer, total)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := map[string]any{
				"hostname": fmt.Sprintf("App-%d", i%hosts), "node": fmt.Sprintf("pve%d", i%3),
				"public_ports": 1 + i%2, "request_id": fmt.Sprintf("req-%d", i),
			}
			// 503 (no leader answered in time, leadership moved) asks
			// to retry with the same request ID, as a client would.
			var r reservation
			var st int
			var err error
			for deadline := time.Now().Add(60 * time.Second); ; {
				r = reservation{}
				st, err = tc.call(i%3, "POST", "/api/v1/reservations", tc.token, body, nil, &r)
				if err == nil && st != 503 || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			answers[i] = answer{st, r}
		}()
	}
	close(start)
	wg.Wait()

	winners := map[string]reservation{}
	conflicts := 0
	for i, a := range answers {
		switch a.status {
		case 201:
			h := a.r.Hostname
			if _, dup := winners[h]; dup {
				t.Fatalf("two winners for hostname %s", h)
			}
			winners[h] = a.r
		case 409:
			conflicts++
		default:
			t.Fatalf("request %d: status %d", i, a.status)
		}
	}
	if len(winners) != hosts || conflicts != total-hosts {
		t.Fatalf("%d winners and %d conflicts, want %d and %d", len(winners), conflicts, hosts, total-hosts)
	}
	assertRegistryUnique(t, tc.listAll(1))
	listed := tc.listAll(2)
	if len(listed) != hosts {
		t.Fatalf("%d reservations listed, want %d", len(listed), hosts)
	}
	for _, r := range listed {
		if w := winners[r.Hostname]; w.ID != r.ID || w.VMID != r.VMID {
			t.Fatalf("listed %+v, acknowledged %+v", r, w)
		}
	}
}

// assertRegistryUnique checks that no VMID, hostname or (node, port) is
// held twice.
func assertRegistryUnique(t *testing.T, rs []reservation) {
	t.Helper()
	vmids := map[int]string{}
	hosts := map[string]string{}
	ports := map[string]string{}
	ids := map[string]bool{}
	for _, r := range rs {
		if ids[r.ID] {
			t.Fatalf("reservation %s listed twice", r.ID)
		}
		ids[r.ID] = true
		if o, ok := vmids[r.VMID]; ok {
			t.Fatalf("VMID %d held by %s and %s", r.VMID, o, r.ID)
		}
		vmids[r.VMID] = r.ID
		if o, ok := hosts[r.Hostname]; ok {
			t.Fatalf("hostname %s held by %s and %s", r.Hostname, o, r.ID)
		}
		hosts[r.Hostname] = r.ID
		for _, p := range r.PublicPorts {
			k := fmt.Sprintf("%s:%d", r.Node, p)
			if o, ok := ports[k]; ok {
				t.Fatalf("port %s held by %s and %s", k, o, r.ID)
			}
			ports[k] = r.ID
		}
	}
}

// reserveUntilAnswered retries one reservation with the same request ID,
// across servers, until it gets a definite answer or the deadline passes.
func (tc *testCluster) reserveUntilAnswered(body map[string]any, deadline time.Time, skip func(int) bool) (int, reservation, error) {
	var lastErr error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		i := rand.IntN(len(tc.nodes))
		if skip != nil && skip(i) {
			continue
		}
		var raw json.RawMessage
		st, err := tc.call(i, "POST", "/api/v1/reservations", tc.token, body, nil, &raw)
		if err == nil && (st == 200 || st == 201 || st == 409 || st == 400) {
			var r reservation
			if st == 200 || st == 201 {
				err = json.Unmarshal(raw, &r)
			} else {
				err = fmt.Errorf("%s", raw)
			}
			return st, r, err
		}
		lastErr = fmt.Errorf("status %d: %v", st, err)
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
	}
	return 0, reservation{}, fmt.Errorf("no answer before the deadline: %w", lastErr)
}

func TestLeaderKillDuringLoadLosesNothingAndDuplicatesNothing(t *testing.T) {
	tc := newTestCluster(t, 3)
	var (
		mu    sync.Mutex
		acked = map[string]reservation{} // request ID → answer
		down  atomic.Int32
	)
	down.Store(-1)
	skip := func(i int) bool { return int(down.Load()) == i }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seq.Add(1)
				rid := fmt.Sprintf("load-%d", n)
				body := map[string]any{"request_id": rid, "hostname": fmt.Sprintf("load-%d", n), "node": loadNode(n), "public_ports": 1}
				st, r, err := tc.reserveUntilAnswered(body, time.Now().Add(60*time.Second), skip)
				if err != nil || st != 201 {
					t.Errorf("%s: status %d: %v", rid, st, err)
					return
				}
				mu.Lock()
				acked[rid] = r
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1 * time.Second)
	for round := 0; round < 2; round++ {
		l := tc.waitLeader()
		down.Store(int32(l))
		tc.kill(l)
		time.Sleep(1500 * time.Millisecond)
		tc.start(l)
		down.Store(-1)
		time.Sleep(1 * time.Second)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	tc.waitLeader()
	listed := tc.listAll(0)
	assertRegistryUnique(t, listed)
	byID := map[string]reservation{}
	for _, r := range listed {
		byID[r.ID] = r
	}
	if len(listed) != len(acked) {
		t.Fatalf("%d reservations in the registry, %d acknowledged", len(listed), len(acked))
	}
	for rid, a := range acked {
		if got, ok := byID[a.ID]; !ok || got.VMID != a.VMID || got.Hostname != a.Hostname {
			t.Fatalf("acknowledged %s (%+v) is not in the registry as answered (%+v)", rid, a, got)
		}
	}
	t.Logf("%d reservations acknowledged across two leader kills", len(acked))
	// Retrying every acknowledged request answers with the original.
	rids := make([]string, 0, len(acked))
	for rid := range acked {
		rids = append(rids, rid)
	}
	sort.Strings(rids)
	for _, rid := range rids[:min(len(rids), 100)] {
		a := acked[rid]
		body := map[string]any{"request_id": rid, "hostname": a.Hostname, "node": a.Node, "public_ports": 1}
		st, r, err := tc.reserveUntilAnswered(body, time.Now().Add(20*time.Second), nil)
		if err != nil || st != 201 || r.ID != a.ID || r.VMID != a.VMID {
			t.Fatalf("retry of %s: %d %v %+v, want 201 with %+v", rid, st, err, r, a)
		}
	}
}

// loadNode spreads load over 20 nodes so that no node's port pool runs out.
func loadNode(n int64) string { return fmt.Sprintf("pve%d", n%20) }

func TestRestartAllServersFromDiskIdenticalRegistry(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := 0; i < 60; i++ {
		body := map[string]any{"request_id": fmt.Sprintf("keep-%d", i), "hostname": fmt.Sprintf("keep-%d", i), "node": fmt.Sprintf("pve%d", i%2), "public_ports": i % 3}
		// Under load leadership may move (503: retry with the same
		// request ID).
		if st, _, err := tc.reserveUntilAnswered(body, time.Now().Add(30*time.Second), nil); err != nil || st != 201 {
			t.Fatalf("reserve %d: %d %v", i, st, err)
		}
		if i%10 == 0 {
			id := tc.listAll(0)[0].ID
			unknown := false // a 503 may have released it already
			testutil.Until(t, 30*time.Second, "release "+id, func() error {
				st, err := tc.call(1, "DELETE", "/api/v1/reservations/"+id, tc.token, nil, nil, nil)
				switch {
				case err == nil && (st == 204 || st == 404 && unknown):
					return nil
				case err == nil && st == 503:
					unknown = true
				case err == nil:
					t.Fatalf("release %s: %d", id, st)
				}
				return fmt.Errorf("release %s: %d %v", id, st, err)
			})
		}
	}
	before := tc.listAll(0)
	tc.stopAll()
	for i := range tc.nodes {
		tc.start(i)
	}
	tc.waitLeader()
	for i := range tc.nodes {
		if d := cmp.Diff(before, tc.listAll(i)); d != "" {
			t.Fatalf("server %d registry after restart (-before +after):\n%s", i, d)
		}
	}
	// The restarted cluster keeps allocating without reusing anything.
	var r reservation
	if st, err := tc.call(2, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "after", "node": "pve0", "public_ports": 2}, nil, &r); err != nil || st != 201 {
		t.Fatalf("reserve after restart: %d %v", st, err)
	}
	assertRegistryUnique(t, tc.listAll(1))
}

func TestJoinAndRemoveServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	// A fourth server joins a running cluster with --join only.
	tc.addJoiner()
	tc.start(3)
	waitMembers := func(i, want int) cluster.Info {
		t.Helper()
		var in cluster.Info
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := tc.call(i, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err == nil && st == 200 && len(in.Members) == want {
				return in
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("server %d sees %d members, want %d", i, len(in.Members), want)
		return in
	}
	waitMembers(3, 4)
	// Writes through the new server work.
	if st, err := tc.call(3, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "via-new", "node": "pve1"}, nil, nil); err != nil || st != 201 {
		t.Fatalf("reserve via new server: %d %v", st, err)
	}
	// Removing it takes it out of the configuration for good.
	if st, err := tc.call(0, "DELETE", "/api/v1/cluster/members/c4", tc.token, nil, nil, nil); err != nil || st != 204 {
		t.Fatalf("remove c4: %d %v", st, err)
	}
	in := waitMembers(0, 3)
	for _, m := range in.Members {
		if m.ID == "c4" {
			t.Fatal("c4 still a member")
		}
	}
	// The reconciler must not add the removed incarnation back.
	time.Sleep(3 * cluster.TestTiming().Reconcile)
	waitMembers(1, 3)
	if st, _ := tc.call(0, "DELETE", "/api/v1/cluster/members/nope", tc.token, nil, nil, nil); st != 404 {
		t.Fatalf("remove unknown member: %d, want 404", st)
	}
}

// A leader that proposed the first admin's token and lost its term before
// the commit leaves the token in admin.token.pending; the next leader may
// still commit it (seen in CI: no server wrote admin.token). The server
// that holds the file installs it once the cluster has that admin, whether
// it leads or not, and drops a pending token the cluster does not hold.
func TestPendingAdminTokenSettlesWithoutLeading(t *testing.T) {
	tc := newTestCluster(t, 3)
	holder := -1
	for i, n := range tc.nodes {
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, AdminTokenFile)); err == nil {
			holder = i
		}
	}
	if holder < 0 {
		t.Fatal("no server holds admin.token")
	}
	ours, stale := (holder+1)%3, (holder+2)%3
	tc.kill(ours)
	tc.kill(stale)
	write := func(i int, secret string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(tc.nodes[i].cfg.DataDir, AdminTokenFile+".pending"), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ours, tc.token)
	write(stale, "not-a-token-the-cluster-holds")
	tc.start(ours)
	tc.start(stale)
	settled := func(i int, want string) error {
		dir := tc.nodes[i].cfg.DataDir
		if _, err := os.Stat(filepath.Join(dir, AdminTokenFile+".pending")); err == nil {
			return fmt.Errorf("%s still holds admin.token.pending", tc.nodes[i].cfg.NodeID)
		}
		b, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
		if got := strings.TrimSpace(string(b)); got != want || (want == "" && !errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("%s admin.token %q (%v), want %q", tc.nodes[i].cfg.NodeID, got, err, want)
		}
		return nil
	}
	testutil.Until(t, 15*time.Second, "the committed pending token installed", func() error { return settled(ours, tc.token) })
	testutil.Until(t, 15*time.Second, "the stale pending token removed", func() error { return settled(stale, "") })
}

func TestNoLeaderAnswers503WithRetryAfter(t *testing.T) {
	// The survivor gives up on a request after two seconds.
	tc := newTestClusterWith(t, 3, withServers(func(cfg *Config) { cfg.RequestTimeout = 2 * time.Second }))
	survivor := (tc.waitLeader() + 1) % 3
	for i := range tc.nodes {
		if i != survivor {
			tc.kill(i)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, h, b := tc.raw(survivor, "POST", "/api/v1/reservations", tc.token, `{"hostname":"lonely","node":"pve1"}`, nil)
		if st == 503 {
			assertProblem(t, st, h, b, 503)
			if h.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 without a quorum; last answer %d %s", st, b)
		}
	}
	if st, h, b := tc.raw(survivor, "GET", "/readyz", "", "", nil); st != 503 {
		t.Fatalf("readyz without a leader: %d %s", st, b)
	} else {
		assertProblem(t, st, h, b, 503)
	}
}
