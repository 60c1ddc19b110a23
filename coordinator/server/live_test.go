package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/problem"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// deployVault deploys Vaultwarden (a generated ADMIN_TOKEN) as alice and
// returns the app and the token's value in the container's .env.
func deployVault(t *testing.T, tc *testCluster, ag *testAgent, tok map[string]string) (appOut, string) {
	t.Helper()
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	vars, err := dotenv.Parse([]byte(ct(t, ag.sim.Store, a.VMID).Files["/opt/proximity/app/.env"]))
	if err != nil || len(vars["ADMIN_TOKEN"]) != 48 {
		t.Fatalf("no generated ADMIN_TOKEN in the container's .env: %v %v", vars, err)
	}
	return a, vars["ADMIN_TOKEN"]
}

type secretsOut struct {
	Items []struct{ Name, Value string }
}

// TestAppSecretsReadFromTheNodeNeverStored reads Vaultwarden's generated
// ADMIN_TOKEN through GET /apps/{id}/secrets: the owner and an admin get
// the value that is in the container's .env, another user a 404; the
// read is audited without the value, the answer is not cached, and the
// value is nowhere in the coordinator's data directory or logs.
func TestAppSecretsReadFromTheNodeNeverStored(t *testing.T) {
	buf := &lockedBuffer{}
	tc, ag, tok := appCluster(t, logsTo(buf))
	a, secret := deployVault(t, tc, ag, tok)

	for _, who := range []string{"alice", "admin"} {
		var out secretsOut
		if code, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/secrets", tok[who], nil, nil, &out); err != nil || code != 200 {
			t.Fatalf("%s: secrets: %d %v", who, code, err)
		}
		if len(out.Items) != 1 || out.Items[0].Name != "ADMIN_TOKEN" || out.Items[0].Value != secret {
			t.Fatalf("%s: secrets %+v, want ADMIN_TOKEN with the container's value", who, out)
		}
	}
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/secrets", tok["bob"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("another user's read: %d, want 404", code)
	}
	req, _ := http.NewRequest("GET", tc.nodes[0].url()+"/api/v1/apps/"+a.ID+"/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+tok["alice"])
	resp, err := tc.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}

	// Audited: three reads by the owner and the admin, with the app's ID
	// and not the value; bob's 404 as well.
	var reads []json.RawMessage
	waitFor(t, "the audit records of the reads", 15*time.Second, func() bool {
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if code, err := tc.call(0, "GET", "/api/v1/audit?per_page=100", tc.token, nil, nil, &page); err != nil || code != 200 {
			t.Fatalf("audit: %d %v", code, err)
		}
		reads = reads[:0]
		for _, r := range page.Items {
			var rec struct {
				Action  string
				Targets []string
			}
			_ = json.Unmarshal(r, &rec)
			if rec.Action == "app.secrets.read" && len(rec.Targets) == 1 && rec.Targets[0] == a.ID {
				reads = append(reads, r)
			}
		}
		return len(reads) >= 4
	})
	for _, r := range reads {
		if strings.Contains(string(r), secret) {
			t.Fatalf("an audit record holds the secret: %s", r)
		}
	}

	if files := tc.scanDataDirs("the secret read through the API", map[string][]byte{"raw": []byte(secret)}); files == 0 {
		t.Fatal("no file scanned")
	}
	logs := buf.String()
	if !strings.Contains(logs, "live request") {
		t.Fatal("the logs were not captured")
	}
	if strings.Contains(logs, secret) {
		t.Error("the secret is in the coordinator's or agent's log")
	}

	// A stopped app has no secrets to read: a conflict, not a 500.
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); err != nil || code != 202 {
		t.Fatalf("stop: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "stopped")
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/secrets", tok["alice"], nil, nil, nil); code != http.StatusConflict {
		t.Fatalf("secrets of a stopped app: %d, want 409", code)
	}
}

type appLogsOut struct {
	Items []struct {
		Time    *time.Time `json:"time"`
		Service string     `json:"service"`
		Line    string     `json:"line"`
	} `json:"items"`
	Total     int  `json:"total"`
	Truncated bool `json:"truncated"`
}

// TestAppOwnLogsBoundedAndFollowed reads the app's own log (docker
// compose logs on its node) bounded by limit, refuses bad parameters,
// and follows it as Server-Sent Events until the client leaves, after
// which nothing keeps running on the agent.
func TestAppOwnLogsBoundedAndFollowed(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a, _ := deployVault(t, tc, ag, tok)
	base := "/api/v1/apps/" + a.ID + "/logs"

	var out appLogsOut
	waitFor(t, "two lines of the app's log", 15*time.Second, func() bool {
		if code, err := tc.call(0, "GET", base+"?source=app&limit=5000", tok["alice"], nil, nil, &out); err != nil || code != 200 {
			t.Fatalf("app logs: %d %v", code, err)
		}
		return len(out.Items) >= 2
	})
	if code, err := tc.call(0, "GET", base+"?source=app&limit=1&since=1h", tok["alice"], nil, nil, &out); err != nil || code != 200 || len(out.Items) != 1 {
		t.Fatalf("app logs, limit 1: %d %v %+v", code, err, out)
	}
	if l := out.Items[0]; l.Time == nil || !strings.HasPrefix(l.Service, "app-") || l.Line == "" {
		t.Fatalf("not a log line of the app: %+v", l)
	}
	if code, _ := tc.call(0, "GET", base+"?source=app", tok["bob"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("another user's read: %d, want 404", code)
	}
	var deploy struct {
		Items []struct{ Msg string }
	}
	if code, err := tc.call(0, "GET", base+"?limit=3", tok["alice"], nil, nil, &deploy); err != nil || code != 200 || len(deploy.Items) != 3 || deploy.Items[0].Msg == "" {
		t.Fatalf("the deployment log stays the default: %d %v %+v", code, err, deploy)
	}
	for _, q := range []string{"source=app&limit=0", "source=app&limit=5001", "limit=1001", "source=nginx", "source=app&since=yesterday",
		"source=app&since=-5m", "source=app&follow=maybe", "follow=true", "source=deploy&follow=true", "source=app&limit=1e3"} {
		if code, _ := tc.call(0, "GET", base+"?"+q, tok["alice"], nil, nil, nil); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}

	head, _ := http.NewRequest("HEAD", tc.nodes[0].url()+base+"?source=app&follow=true", nil)
	head.Header.Set("Authorization", "Bearer "+tok["alice"])
	resp, err := tc.http.Do(head)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || ag.agent.LiveActive() != 0 {
		t.Fatalf("HEAD of a followed log: %d %s, %d requests on the agent", resp.StatusCode, resp.Header.Get("Content-Type"), ag.agent.LiveActive())
	}
	followLogs(t, tc, tc.nodes[0].url()+base, tok["alice"], ag)
}

// followLogs follows an app's log at url and checks the stream: headers
// and a comment at once, then an event per line, a new line as the app
// prints it; once the client leaves, nothing keeps running on the agent.
func followLogs(t *testing.T, tc *testCluster, url, token string, ag *testAgent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"?source=app&follow=true&limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := tc.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": ") {
		t.Fatalf("the stream does not start with a comment: %q", sc.Text())
	}
	events := 0
	for events < 2 && sc.Scan() { // the tail's line, then a new one
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var l struct{ Service, Line string }
			if err := json.Unmarshal([]byte(data), &l); err != nil || !strings.HasPrefix(l.Service, "app-") {
				t.Fatalf("event data %q: %v", data, err)
			}
			events++
		} else if strings.HasPrefix(sc.Text(), "event: ") && sc.Text() != "event: log" {
			t.Fatalf("unexpected event %q", sc.Text())
		}
	}
	if events < 2 {
		t.Fatalf("the stream ended after %d events: %v", events, sc.Err())
	}
	if n := ag.agent.LiveActive(); n != 1 {
		t.Fatalf("%d live requests on the agent while following, want 1", n)
	}
	cancel()
	waitFor(t, "the followed log stopped on the agent once the client left", 15*time.Second, func() bool { return ag.agent.LiveActive() == 0 })
}

// TestAppLogsFollowedThroughAFollower: a follower forwards the app's log
// to the leader, whose agent has the live channel, and relays a followed
// log as a stream; the client leaving the follower stops it on the agent.
func TestAppLogsFollowedThroughAFollower(t *testing.T) {
	tc := newTestCluster(t, 3)
	ag := tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	var a appOut
	if code, err := tc.call(tc.waitLeader(), "POST", "/api/v1/apps", tc.token, map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tc.token, a.ID, "running")
	f := (tc.waitLeader() + 1) % 3
	base := "/api/v1/apps/" + a.ID + "/logs"
	var out appLogsOut
	if code, err := tc.call(f, "GET", base+"?source=app&limit=1", tc.token, nil, nil, &out); err != nil || code != 200 || len(out.Items) != 1 {
		t.Fatalf("app logs through a follower: %d %v %+v", code, err, out)
	}
	followLogs(t, tc, tc.nodes[f].url()+base, tc.token, ag)
}

// TestLiveRequestsBoundedPerNode: a node answers at most
// agentsvc.LiveMaxPerNode live requests at once; the next is refused
// with 503 (through the API too) until one ends, and the ones that end
// leave nothing running on the agent.
func TestLiveRequestsBoundedPerNode(t *testing.T) {
	tc, ag, tok := appCluster(t)
	a, _ := deployVault(t, tc, ag, tok)
	agents := tc.leaderServer().Agents()
	follow := &pb.LiveRequest{Kind: agentsvc.LiveAppLogs, Vmid: uint32(a.VMID), Logs: &pb.LogsArgs{Tail: 1, Follow: true}}
	var cancels []context.CancelFunc
	for i := 0; i < agentsvc.LiveMaxPerNode; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cancels = append(cancels, cancel)
		if _, err := agents.Query(ctx, "pve1", follow); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if _, err := agents.Query(context.Background(), "pve1", follow); problem.KindOf(err) != problem.Unavailable {
		t.Fatalf("request %d: %v, want unavailable", agentsvc.LiveMaxPerNode+1, err)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/secrets", tok["alice"], nil, nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("secrets while the node is busy: %d, want 503", code)
	}
	waitFor(t, "every request running on the agent", 15*time.Second, func() bool { return ag.agent.LiveActive() == agentsvc.LiveMaxPerNode })
	for _, c := range cancels {
		c()
	}
	waitFor(t, "no live request left on the agent", 15*time.Second, func() bool { return ag.agent.LiveActive() == 0 })
	var out secretsOut
	if code, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/secrets", tok["alice"], nil, nil, &out); err != nil || code != 200 || len(out.Items) != 1 {
		t.Fatalf("secrets once the node is free: %d %v", code, err)
	}
}

// TestLiveChannelFollowsTheLeader: when the leader dies, the agent opens
// its live stream on the new leader, and the app's logs and secrets are
// read there.
func TestLiveChannelFollowsTheLeader(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	var a appOut
	if code, err := tc.call(tc.waitLeader(), "POST", "/api/v1/apps", tc.token, map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tc.token, a.ID, "running")
	old := tc.waitLeader()
	tc.kill(old)
	var l int
	waitFor(t, "the live stream on the new leader", 30*time.Second, func() bool {
		// Under load leadership may move again: the stream follows
		// whichever server leads now.
		l = tc.leader()
		return l >= 0 && l != old && tc.nodes[l].server().Agents().LiveConnected("pve1")
	})
	var out appLogsOut
	if code, err := tc.call(l, "GET", "/api/v1/apps/"+a.ID+"/logs?source=app&limit=1", tc.token, nil, nil, &out); err != nil || code != 200 || len(out.Items) != 1 {
		t.Fatalf("app logs on the new leader: %d %v %+v", code, err, out)
	}
	var sec secretsOut
	if code, err := tc.call(l, "GET", "/api/v1/apps/"+a.ID+"/secrets", tc.token, nil, nil, &sec); err != nil || code != 200 || len(sec.Items) != 1 {
		t.Fatalf("secrets on the new leader: %d %v %+v", code, err, sec)
	}
	tc.start(old)
}
