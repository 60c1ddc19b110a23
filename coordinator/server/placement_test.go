package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// threeNodeCluster is one server with fast retries and three equal
// simulated nodes that have reported their capacity and containers, and
// a user's token.
func threeNodeCluster(t *testing.T) (*testCluster, string) {
	tc := newTestClusterWith(t, 1, appPolicy(fastRetries))
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		tc.startAgent(n, tc.joinToken(nil), filepath.Join(tc.dir, n), tc.grpcAddrs())
	}
	waitFor(t, "three nodes reported", 20*time.Second, func() bool {
		for _, n := range []string{"pve1", "pve2", "pve3"} {
			li, ok := tc.leaderServer().Agents().NodeLive(n)
			if !ok || !li.Inventoried || li.MemTotal == 0 || tc.nodes_()[n].Status != "ready" {
				return false
			}
		}
		return true
	})
	return tc, tc.userToken("alice", "user")
}

// deployAll sends the deploys at once, without waiting between them, and
// returns the answers' status codes and apps.
func (tc *testCluster) deployAll(token string, bodies []map[string]any) ([]int, []appOut) {
	codes, out := make([]int, len(bodies)), make([]appOut, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = tc.call(0, "POST", "/api/v1/apps", token, b, nil, &out[i])
		}()
	}
	wg.Wait()
	return codes, out
}

// TestSevenQuickDeploysSpreadOverThreeNodes protects the finding "seven
// deploys without --node all went to pve2 while pve3 had 64 GiB free and
// nothing on it": deploys sent at once, before any inventory shows them,
// land on all three equal nodes, evenly.
func TestSevenQuickDeploysSpreadOverThreeNodes(t *testing.T) {
	tc, alice := threeNodeCluster(t)
	var bodies []map[string]any
	for i := range 7 {
		bodies = append(bodies, map[string]any{"catalog_id": "homepage", "hostname": fmt.Sprintf("quick%d", i)})
	}
	codes, got := tc.deployAll(alice, bodies)
	per := map[string]int{}
	for i, a := range got {
		if codes[i] != http.StatusAccepted {
			t.Fatalf("deploy %d: %d", i, codes[i])
		}
		per[a.Node]++
	}
	lo, hi := 7, 0
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		lo, hi = min(lo, per[n]), max(hi, per[n])
	}
	if lo == 0 || hi-lo > 1 {
		t.Fatalf("seven quick deploys on three equal nodes: %v", per)
	}
}

// TestOversizedDeployRefusedWithNothingReserved: a deploy that fits no
// ready node, or a named node that cannot take it, is 409 of type
// capacity naming the shortfall, and reserves nothing.
func TestOversizedDeployRefusedWithNothingReserved(t *testing.T) {
	tc, alice := threeNodeCluster(t)
	count := func() (n int) {
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { n = len(s.Apps) + len(s.Reservations) })
		return
	}
	for _, c := range []struct {
		body map[string]any
		want []string
	}{
		{map[string]any{"catalog_id": "homepage", "hostname": "huge", "resources": map[string]int{"cores": 1, "memory_mb": 131072, "disk_gb": 4}},
			[]string{"needs 131072 MiB memory", "the most free on a ready node is 65536 MiB memory on pve"}},
		{map[string]any{"catalog_id": "homepage", "hostname": "huge", "node": "pve2", "resources": map[string]int{"cores": 1, "memory_mb": 131072, "disk_gb": 4}},
			[]string{"node pve2 cannot take the app", "needs 131072 MiB memory", "pve2 has 65536 MiB memory free"}},
		{map[string]any{"catalog_id": "homepage", "hostname": "huge", "resources": map[string]int{"cores": 1, "memory_mb": 512, "disk_gb": 4000}},
			[]string{"needs 4000 GiB disk", "the most free on a ready node is"}},
	} {
		before := count()
		st, h, b := tc.raw(0, "POST", "/api/v1/apps", alice, mustJSON(c.body), nil)
		p := assertProblem(t, st, h, b, http.StatusConflict)
		for _, w := range c.want {
			if p.Type != "urn:proximity:problem:capacity" || !strings.Contains(p.Detail, w) {
				t.Fatalf("refusal %s %q does not say %q", p.Type, p.Detail, w)
			}
		}
		if after := count(); after != before {
			t.Fatalf("a refused deploy left %d apps and reservations (before: %d)", after, before)
		}
	}
}

// TestPlacementSettingsPackAndOvercommit: GET, PUT and PATCH of the
// placement settings; pack fills one node first; memory overcommit lets
// an app fit that did not.
func TestPlacementSettingsPackAndOvercommit(t *testing.T) {
	tc, alice := threeNodeCluster(t)
	if d := tc.settingsDoc(t, "/api/v1/settings/placement"); d["strategy"] != "spread" || d["memory_overcommit"] != 1.0 || d["cpu_overcommit"] != 4.0 {
		t.Fatalf("default placement: %v", d)
	}
	for _, bad := range []string{`{"strategy":"random"}`, `{"memory_overcommit":0.5}`, `{"cpu_overcommit":100}`, `{"memory_overcommit":"2"}`} {
		st, h, b := tc.raw(0, "PATCH", "/api/v1/settings/placement", tc.token, bad, nil)
		assertProblem(t, st, h, b, http.StatusBadRequest)
	}
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/settings/placement", tc.token, `{"strategy":"pack"}`, nil); st != 200 {
		t.Fatalf("PATCH pack: %d %s", st, b)
	}
	if d := tc.settingsDoc(t, "/api/v1/settings/placement"); d["strategy"] != "pack" || d["cpu_overcommit"] != 4.0 {
		t.Fatalf("placement after PATCH: %v", d)
	}
	var bodies []map[string]any
	for i := range 4 {
		bodies = append(bodies, map[string]any{"catalog_id": "homepage", "hostname": fmt.Sprintf("packed%d", i)})
	}
	codes, got := tc.deployAll(alice, bodies)
	for i, a := range got {
		if codes[i] != http.StatusAccepted || a.Node != got[0].Node {
			t.Fatalf("pack: deploy %d: %d on %q (the first on %q)", i, codes[i], a.Node, got[0].Node)
		}
	}

	// 40 GiB on a 64 GiB node fits once; a second fits with overcommit.
	big := func(host string) (int, problemDoc) {
		body := map[string]any{"catalog_id": "homepage", "hostname": host, "node": "pve3", "resources": map[string]int{"cores": 1, "memory_mb": 40960, "disk_gb": 4}}
		st, h, b := tc.raw(0, "POST", "/api/v1/apps", alice, mustJSON(body), nil)
		if st == http.StatusAccepted {
			return st, problemDoc{}
		}
		return st, assertProblem(t, st, h, b, st)
	}
	if st, p := big("big1"); st != http.StatusAccepted {
		t.Fatalf("first 40 GiB app: %d %s", st, p.Detail)
	}
	if st, p := big("big2"); st != http.StatusConflict || !strings.Contains(p.Detail, "pve3") {
		t.Fatalf("second 40 GiB app without overcommit: %d %q", st, p.Detail)
	}
	if code, err := tc.call(0, "PUT", "/api/v1/settings/placement", tc.token, map[string]any{"strategy": "spread", "memory_overcommit": 2, "cpu_overcommit": 4}, nil, nil); err != nil || code != 200 {
		t.Fatalf("PUT placement: %d %v", code, err)
	}
	if st, p := big("big2"); st != http.StatusAccepted {
		t.Fatalf("second 40 GiB app with memory overcommit 2: %d %s", st, p.Detail)
	}
}

// TestCloneThatDoesNotFitRefused: a clone goes to its source's node, which
// must be able to take it: otherwise 409 capacity, and nothing reserved.
func TestCloneThatDoesNotFitRefused(t *testing.T) {
	tc, alice := threeNodeCluster(t)
	var a appOut
	body := map[string]any{"catalog_id": "homepage", "hostname": "big", "node": "pve2", "resources": map[string]int{"cores": 1, "memory_mb": 40960, "disk_gb": 4}}
	if code, err := tc.call(0, "POST", "/api/v1/apps", alice, body, nil, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(alice, a.ID, "running")
	count := func() (n int) {
		tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) { n = len(s.Apps) + len(s.Reservations) })
		return
	}
	before := count()
	st, h, b := tc.raw(0, "POST", "/api/v1/apps/"+a.ID+"/clone", alice, `{"hostname":"big-copy"}`, nil)
	p := assertProblem(t, st, h, b, http.StatusConflict)
	if p.Type != "urn:proximity:problem:capacity" || !strings.Contains(p.Detail, "node pve2 cannot take the app") || !strings.Contains(p.Detail, "40960 MiB memory") {
		t.Fatalf("clone refusal: %s %q", p.Type, p.Detail)
	}
	if after := count(); after != before {
		t.Fatalf("a refused clone left %d apps and reservations (before: %d)", after, before)
	}
}
