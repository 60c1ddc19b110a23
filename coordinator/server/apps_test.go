package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/apps"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

type appOut struct {
	ID, Status, Hostname, Node, Owner, Error string
	VMID                                     int
	PublicPorts                              []int `json:"public_ports"`
}

// appCluster is one server with fast retries and one agent on a simulated
// node, and two users.
func appCluster(t *testing.T, opts ...clusterOpt) (*testCluster, *testAgent, map[string]string) {
	return appClusterWith(t, fastRetries, opts...)
}

// fastRetries is the apps' retry policy of most tests.
var fastRetries = apps.Policy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 3}

// appPolicy gives the cluster's servers the apps' retry policy p.
func appPolicy(p apps.Policy) clusterOpt {
	return withServers(func(cfg *Config) { cfg.AppPolicy = &p })
}

// appClusterWith is appCluster with a retry policy of the test's.
func appClusterWith(t *testing.T, p apps.Policy, opts ...clusterOpt) (*testCluster, *testAgent, map[string]string) {
	tc := newTestClusterWith(t, 1, append([]clusterOpt{appPolicy(p)}, opts...)...)
	ag := tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	return tc, ag, appUsers(t, tc)
}

// appUsers makes the users alice and bob; it returns their tokens and the
// admin's.
func appUsers(t *testing.T, tc *testCluster) map[string]string {
	tokens := map[string]string{"admin": tc.token}
	for _, name := range []string{"alice", "bob"} {
		var u struct{ ID string }
		if code, err := tc.call(0, "POST", "/api/v1/users", tc.token, map[string]string{"name": name, "role": "user"}, nil, &u); err != nil || code != 201 {
			t.Fatalf("user %s: %d %v", name, code, err)
		}
		var tok struct{ Token string }
		if code, err := tc.call(0, "POST", "/api/v1/users/"+u.ID+"/tokens", tc.token, nil, nil, &tok); err != nil || code != 201 {
			t.Fatalf("token %s: %d %v", name, code, err)
		}
		tokens[name] = tok.Token
	}
	return tokens
}

func (tc *testCluster) appStatus(token, id string) (int, appOut) {
	var a appOut
	// Under load leadership may be moving: ask whichever server leads
	// once there is one.
	code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/apps/"+id, token, nil, nil, &a)
	if err != nil && code != http.StatusNotFound {
		tc.t.Fatal(err)
	}
	return code, a
}

func (tc *testCluster) waitApp(token, id, status string) appOut {
	tc.t.Helper()
	var a appOut
	waitFor(tc.t.(*testing.T), "app "+id+" "+status, 30*time.Second, func() bool {
		_, a = tc.appStatus(token, id)
		return a.Status == status
	})
	return a
}

func ct(t *testing.T, st *pvesim.Store, vmid int) *pvesim.CT {
	var out *pvesim.CT
	_ = st.View(func(n *pvesim.Node) error { out = n.CTs[vmid]; return nil })
	return out
}

// TestAppLifecycle: deploy, stop, start, restart, logs, metrics and delete
// of a catalog app, with the simulated node checked after each step, and
// another user seeing none of it.
func TestAppLifecycle(t *testing.T) {
	tc, ag, tok := appCluster(t)
	var a appOut
	code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "uptime-kuma", "hostname": "kuma"}, nil, &a)
	if err != nil || code != http.StatusAccepted || a.Status != "deploying" {
		t.Fatalf("deploy: %d %v %+v", code, err, a)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	c := ct(t, ag.sim.Store, a.VMID)
	if c == nil || c.Status != "running" || c.Config["features"] != "nesting=1,keyctl=1" || c.Config["unprivileged"] != "1" ||
		!strings.Contains(c.Files["/opt/proximity/app/compose.yaml"], "louislam/uptime-kuma") {
		t.Fatalf("container after deploy: %+v", c)
	}
	if len(a.PublicPorts) != 1 || a.Owner == "" {
		t.Fatalf("app: %+v", a)
	}
	// The public port is forwarded on the node to the container.
	ruleset := func() string {
		var r string
		_ = ag.sim.Store.View(func(n *pvesim.Node) error { r = n.Ruleset; return nil })
		return r
	}
	ip := strings.TrimSuffix(strings.SplitN(c.IPv4(), "/", 2)[0], "")
	if want := fmt.Sprintf("tcp dport %d dnat to %s:3001 comment %q", a.PublicPorts[0], ip, a.ID); !strings.Contains(ruleset(), want) {
		t.Fatalf("forwards after deploy: want %q in\n%s", want, ruleset())
	}

	// Bob cannot see or touch it: 404, never 403.
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/v1/apps/" + a.ID}, {"GET", "/api/v1/apps/" + a.ID + "/logs"}, {"GET", "/api/v1/apps/" + a.ID + "/metrics"},
		{"DELETE", "/api/v1/apps/" + a.ID},
	} {
		if code, _ := tc.call(0, rq.method, rq.path, tok["bob"], nil, nil, nil); code != http.StatusNotFound {
			t.Fatalf("bob %s %s: %d", rq.method, rq.path, code)
		}
	}
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["bob"], map[string]string{"action": "stop"}, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob stops alice's app: %d", code)
	}
	var list struct{ Total int }
	if _, err := tc.call(0, "GET", "/api/v1/apps", tok["bob"], nil, nil, &list); err != nil || list.Total != 0 {
		t.Fatalf("bob's list: %+v %v", list, err)
	}

	action := func(act, want, ctStatus string) {
		t.Helper()
		if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": act}, nil, nil); err != nil || code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", act, code, err)
		}
		tc.waitApp(tok["alice"], a.ID, want)
		if c := ct(t, ag.sim.Store, a.VMID); c == nil || c.Status != ctStatus {
			t.Fatalf("container after %s: %+v", act, c)
		}
	}
	action("stop", "stopped", "stopped")
	if code, _ := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); code != http.StatusConflict {
		t.Fatalf("stop of a stopped app: %d", code)
	}
	action("start", "running", "running")
	action("restart", "running", "running")

	var logs struct {
		Items []fsm.LogLine
		Total int
	}
	if code, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=5", tok["alice"], nil, nil, &logs); err != nil || code != 200 || len(logs.Items) != 5 || logs.Total <= 5 {
		t.Fatalf("logs: %d %v %+v", code, err, logs)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=0", tok["alice"], nil, nil, nil); code != http.StatusBadRequest {
		t.Fatalf("limit=0: %d", code)
	}
	var m map[string]any
	waitFor(t, "metrics", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/metrics", tok["alice"], nil, nil, &m)
		return m["status"] == "running" && m["max_mem"] != nil
	})

	if code, _ := tc.call(0, "DELETE", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, nil); code != http.StatusAccepted {
		t.Fatalf("delete: %d", code)
	}
	waitFor(t, "app gone", 30*time.Second, func() bool {
		code, _ := tc.appStatus(tok["alice"], a.ID)
		return code == http.StatusNotFound
	})
	if c := ct(t, ag.sim.Store, a.VMID); c != nil {
		t.Fatalf("container after delete: %+v", c)
	}
	if strings.Contains(ruleset(), a.ID) {
		t.Fatalf("forwards after delete:\n%s", ruleset())
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if len(s.Reservations) != 0 {
			t.Fatalf("reservations left after delete: %v", s.Reservations)
		}
	})
}

// TestAuditFindings11And13DeployRetries: a transient pct create failure is retried and the app
// ends running; failures that outlast the retry policy end in error with
// the reason, and every reservation is free again.
func TestAuditFindings11And13DeployRetries(t *testing.T) {
	tc, ag, tok := appCluster(t)
	if err := ag.sim.Store.SetFaults(pvesim.Faults{FailNext: 1}); err != nil {
		t.Fatal(err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "home"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	var logs struct{ Items []fsm.LogLine }
	_, _ = tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", tok["alice"], nil, nil, &logs)
	retried := false
	for _, l := range logs.Items {
		retried = retried || strings.Contains(l.Msg, "create: attempt 1 of 3 failed")
	}
	if !retried {
		t.Fatalf("no retry in the log: %+v", logs.Items)
	}

	if err := ag.sim.Store.SetFaults(pvesim.Faults{FailRate: 1}); err != nil {
		t.Fatal(err)
	}
	var b appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "doomed"}, nil, &b); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	b = tc.waitApp(tok["alice"], b.ID, "error")
	if !strings.Contains(b.Error, "create failed after 3 attempt(s)") || !strings.Contains(b.Error, "got timeout") || b.VMID != 0 {
		t.Fatalf("failed app: %+v", b)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if _, held := s.ReservationByHostname("doomed"); held || len(s.Reservations) != 1 {
			t.Fatalf("reservations after a failed deploy: %v", s.Reservations)
		}
	})
}

// TestAuditFinding09ConcurrentDeploysOneWinnerPerHostname: 50 concurrent
// deploys over 10 hostnames: one winner each, the rest 409, and no
// reservation leaked.
func TestAuditFinding09ConcurrentDeploysOneWinnerPerHostname(t *testing.T) {
	tc, _, tok := appCluster(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": fmt.Sprintf("dup-%d", i%10)}, nil, nil)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusAccepted] != 10 || codes[http.StatusConflict] != 40 {
		t.Fatalf("answers: %v", codes)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		if len(s.Reservations) != 10 || len(s.Apps) != 10 {
			t.Fatalf("%d reservations and %d apps for 10 winners", len(s.Reservations), len(s.Apps))
		}
	})
}

// TestResourceDefaultsUsedByDeploys: the resource settings are validated
// and the next deploy's container has them.
func TestResourceDefaultsUsedByDeploys(t *testing.T) {
	tc, ag, tok := appCluster(t)
	for _, bad := range []map[string]any{{"swap_mb": -1, "storage": "local-lvm"}, {"swap_mb": 512, "storage": "local lvm"}, {"swap_mb": 99999, "storage": "x1"}} {
		if code, _ := tc.call(0, "PUT", "/api/v1/settings/resources", tok["admin"], bad, nil, nil); code != http.StatusBadRequest {
			t.Fatalf("PUT %v: %d", bad, code)
		}
	}
	if code, _ := tc.call(0, "PUT", "/api/v1/settings/resources", tok["alice"], map[string]any{"swap_mb": 1024, "storage": "local-lvm"}, nil, nil); code != http.StatusForbidden {
		t.Fatalf("PUT as a user: %d", code)
	}
	if code, err := tc.call(0, "PUT", "/api/v1/settings/resources", tok["admin"], map[string]any{"swap_mb": 1024, "storage": "local-lvm"}, nil, nil); err != nil || code != 200 {
		t.Fatalf("PUT: %d %v", code, err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "dash", "resources": map[string]int{"cores": 2, "memory_mb": 768, "disk_gb": 3}}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	c := ct(t, ag.sim.Store, a.VMID)
	if c.Config["swap"] != "1024" || c.Config["cores"] != "2" || c.Config["memory"] != "768" || !strings.HasPrefix(c.Config["rootfs"], "local-lvm:") || !strings.Contains(c.Config["rootfs"], "size=3G") {
		t.Fatalf("container config: %v", c.Config)
	}
}
