package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/internal/testutil"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

func (c *coordinatorStub) Live(st pb.Agent_LiveServer) error {
	hello, err := st.Recv()
	if err != nil {
		return err
	}
	if hello.Node != "pve1" {
		return fmt.Errorf("hello from %q", hello.Node)
	}
	c.mu.Lock()
	c.live = st
	c.mu.Unlock()
	for {
		r, err := st.Recv()
		if err != nil {
			return err
		}
		c.replies <- r
	}
}

// ask sends a live request once the agent's stream is open.
func (h *policyNodeHarness) ask(t *testing.T, req *pb.LiveRequest) {
	t.Helper()
	h.n++
	if req.Id == "" {
		req.Id = fmt.Sprintf("live-%d", h.n)
	}
	var st pb.Agent_LiveServer
	waitUntil(t, "the agent's Live stream", func() bool {
		h.coord.mu.Lock()
		defer h.coord.mu.Unlock()
		st = h.coord.live
		return st != nil
	})
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
}

// answer collects the replies to id up to its end.
func (h *policyNodeHarness) answer(t *testing.T, id string) (data string, end *pb.LiveReply) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-h.coord.replies:
			if r.Id != id {
				t.Fatalf("a reply to %q while waiting for %q", r.Id, id)
			}
			data += string(r.Data)
			if r.End {
				return data, r
			}
		case <-timeout:
			t.Fatalf("no end of live request %s", id)
		}
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testutil.UntilTrue(t, 30*time.Second, what, ok)
}

// TestLiveAnswersLogsAndEnvOfTheApp runs a real agent on a simulated node
// with a deployed app: its logs come bounded by tail, a followed log
// streams until it is cancelled (and nothing of it keeps running), a
// read of the .env returns only the names asked for, and the node's
// policy refuses reads outside the app.
func TestLiveAnswersLogsAndEnvOfTheApp(t *testing.T) {
	h := startPolicyNode(t, Policy{Source: "/etc/proximity/agent.yaml"})
	const app = 100
	h.mustRun(t, taskspec.Create, app, taskspec.CreateSpec{Template: "debian-13-standard_13.6-1_amd64.tar.zst", Hostname: "vault",
		MemoryMB: 512, DiskGB: 2, Net0: "name=eth0,bridge=vmbr0,ip=dhcp", Start: true})
	h.mustRun(t, taskspec.Exec, app, taskspec.ExecSpec{Argv: []string{"sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl"}})
	h.mustRun(t, taskspec.Push, app, taskspec.PushSpec{Path: AppDir + "/compose.yaml", Content: []byte("services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n"), Perms: "0644"})
	h.mustRun(t, taskspec.WriteEnv, app, taskspec.EnvSpec{Path: AppDir + "/.env", Values: map[string]string{"TZ": "UTC"}, Generate: map[string]int{"ADMIN_TOKEN": 48}})
	h.mustRun(t, taskspec.Exec, app, taskspec.ExecSpec{Argv: []string{"docker", "compose", "--project-directory", AppDir, "up", "-d", "--remove-orphans"}})

	t.Run("logs bounded by tail", func(t *testing.T) {
		waitUntil(t, "three lines of logs", func() bool {
			h.ask(t, &pb.LiveRequest{Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 5000}})
			data, _ := h.answer(t, fmt.Sprintf("live-%d", h.n))
			return strings.Count(data, "\n") >= 3
		})
		h.ask(t, &pb.LiveRequest{Id: "tail2", Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 2}})
		data, end := h.answer(t, "tail2")
		lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
		if end.Error != "" || len(lines) != 2 {
			t.Fatalf("tail 2: %q, end %+v", data, end)
		}
		for _, l := range lines {
			svc, rest, ok := strings.Cut(l, "| ")
			if !ok || !strings.HasPrefix(svc, "app-") {
				t.Fatalf("not a compose log line: %q", l)
			}
			if _, err := time.Parse(time.RFC3339Nano, strings.Fields(rest)[0]); err != nil {
				t.Fatalf("no timestamp: %q", l)
			}
		}
	})

	t.Run("follow until cancelled", func(t *testing.T) {
		h.ask(t, &pb.LiveRequest{Id: "f1", Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 1, Follow: true}})
		var got string
		for strings.Count(got, "\n") < 2 { // the tail, then a new line
			select {
			case r := <-h.coord.replies:
				if r.Id != "f1" || r.End {
					t.Fatalf("reply %+v while following", r)
				}
				got += string(r.Data)
			case <-time.After(30 * time.Second):
				t.Fatalf("no new line while following: %q", got)
			}
		}
		if n := h.agent.LiveActive(); n != 1 {
			t.Fatalf("%d live requests running while following, want 1", n)
		}
		h.ask(t, &pb.LiveRequest{Id: "f1", Kind: "cancel"})
		_, end := h.answer(t, "f1")
		if end.Error != "" {
			t.Fatalf("a cancelled follow ends with an error: %+v", end)
		}
		waitUntil(t, "no live request running", func() bool { return h.agent.LiveActive() == 0 })
	})

	t.Run("env: only the names asked for", func(t *testing.T) {
		var want string
		_ = h.sim.Store.View(func(n *pvesimNode) error {
			vars, err := dotenv.Parse([]byte(n.CTs[app].Files[AppDir+"/.env"]))
			want = vars["ADMIN_TOKEN"]
			return err
		})
		if len(want) != 48 {
			t.Fatalf("no generated token in the container: %q", want)
		}
		h.ask(t, &pb.LiveRequest{Id: "env1", Kind: "read_env", Vmid: app, Env: &pb.EnvArgs{Path: AppDir + "/.env", Names: []string{"ADMIN_TOKEN", "MISSING"}}})
		data, end := h.answer(t, "env1")
		if end.Error != "" || data != "" || len(end.Values) != 1 || end.Values[0].Name != "ADMIN_TOKEN" || end.Values[0].Value != want {
			t.Fatalf("read_env: %q %+v", data, end)
		}
	})

	refused := func(t *testing.T, req *pb.LiveRequest, reason string) {
		t.Helper()
		req.Id = "refused-" + req.Kind
		h.ask(t, req)
		data, end := h.answer(t, req.Id)
		if data != "" || len(end.Values) != 0 || end.ErrorKind != "invalid" || !strings.Contains(end.Error, "refused by this node's policy (/etc/proximity/agent.yaml): "+reason) {
			t.Fatalf("%s: %q %+v, want refused: %s", req.Kind, data, end, reason)
		}
	}
	t.Run("policy", func(t *testing.T) {
		refused(t, &pb.LiveRequest{Kind: "read_env", Vmid: app, Env: &pb.EnvArgs{Path: "/etc/shadow", Names: []string{"root"}}}, "read_env: only the app's .env file")
		refused(t, &pb.LiveRequest{Kind: "read_env", Vmid: app, Env: &pb.EnvArgs{Path: AppDir + "/../../../root/.env", Names: []string{"X"}}}, "read_env to")
		refused(t, &pb.LiveRequest{Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 5001}}, "app_logs: a tail of 1-5000 lines")
		refused(t, &pb.LiveRequest{Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 10, Since: "--follow"}}, "app_logs: since")
		refused(t, &pb.LiveRequest{Kind: "exec", Vmid: app}, `live request kind "exec"`)
		// A container Proximity did not make.
		if err := h.sim.Runtime.Create(t.Context(), pveCreate(101)); err != nil {
			t.Fatal(err)
		}
		refused(t, &pb.LiveRequest{Kind: "app_logs", Vmid: 101, Logs: &pb.LogsArgs{Tail: 10}}, `CT 101 was not made by Proximity`)
	})

	t.Run("stopped app", func(t *testing.T) {
		h.mustRun(t, taskspec.Stop, app, nil)
		h.ask(t, &pb.LiveRequest{Id: "stopped", Kind: "app_logs", Vmid: app, Logs: &pb.LogsArgs{Tail: 10}})
		_, end := h.answer(t, "stopped")
		if end.ErrorKind != "not_running" {
			t.Fatalf("logs of a stopped app: %+v", end)
		}
	})
}

type pvesimNode = pvesim.Node

func pveCreate(vmid int) pve.CreateSpec {
	return pve.CreateSpec{VMID: vmid, Template: "local:vztmpl/debian-13-standard_13.6-1_amd64.tar.zst", Hostname: "other",
		MemoryMB: 512, RootFS: "local-lvm:2", Unprivileged: true}
}

// chattyNode is an app container whose logs print lines of a KiB for as
// long as they are read.
type chattyNode struct {
	configNode
}

func (chattyNode) ExecStream(ctx context.Context, _ int, _ []string, line func(string) error) (pve.ExecResult, error) {
	l := strings.Repeat("x", 1023)
	for i := 0; i < 1<<20; i++ {
		if err := ctx.Err(); err != nil {
			return pve.ExecResult{}, err
		}
		if err := line(l); err != nil {
			return pve.ExecResult{}, err
		}
	}
	return pve.ExecResult{}, nil
}

// TestLiveLogsAnswerBoundedInBytes: an app whose log is larger than the
// bound gets an answer of at most 1 MiB, of whole lines, marked
// truncated, and the command is stopped.
func TestLiveLogsAnswerBoundedInBytes(t *testing.T) {
	a := &Agent{cfg: Config{Runtime: chattyNode{policyNode}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l := newLive(a)
	total := 0
	var end *pb.LiveReply
	l.answer(t.Context(), &pb.LiveRequest{Id: "big", Kind: "app_logs", Vmid: 100, Logs: &pb.LogsArgs{Tail: 5000}}, func(r *pb.LiveReply) error {
		total += len(r.Data)
		if len(r.Data) > 0 && r.Data[len(r.Data)-1] != '\n' {
			t.Errorf("a chunk that does not end a line: %q", r.Data[len(r.Data)-10:])
		}
		if r.End {
			end = r
		}
		return nil
	})
	if end == nil || end.Error != "" || !end.Truncated {
		t.Fatalf("end of the answer: %+v", end)
	}
	if total > liveMaxBytes || total < liveMaxBytes-1024 {
		t.Fatalf("%d bytes answered, want at most %d and close to it", total, liveMaxBytes)
	}
}

// TestPolicyLiveRequests: the node's rule for live requests, case by case:
// reads of the app's logs and .env in Proximity's containers only, with
// their bounds.
func TestPolicyLiveRequests(t *testing.T) {
	env := func(path string, names ...string) *pb.LiveRequest {
		return &pb.LiveRequest{Kind: "read_env", Vmid: 100, Env: &pb.EnvArgs{Path: path, Names: names}}
	}
	logs := func(vmid uint32, tail uint32, since string) *pb.LiveRequest {
		return &pb.LiveRequest{Kind: "app_logs", Vmid: vmid, Logs: &pb.LogsArgs{Tail: tail, Since: since}}
	}
	many := make([]string, liveMaxNames+1)
	for i := range many {
		many[i] = fmt.Sprintf("V%d", i)
	}
	for _, c := range []struct {
		name   string
		req    *pb.LiveRequest
		refuse string
	}{
		{"logs", logs(100, 100, ""), ""},
		{"logs since a duration", logs(100, 5000, "1h30m0s"), ""},
		{"logs since a time", logs(100, 1, "2026-11-30T02:00:00.5Z"), ""},
		{"logs since an offset time", logs(100, 1, "2026-11-30T02:00:00+01:00"), ""},
		{"a tail of 0", logs(100, 0, ""), "a tail of 1-5000"},
		{"a tail over the bound", logs(100, 5001, ""), "a tail of 1-5000"},
		{"since an option", logs(100, 10, "--follow"), "is not an RFC 3339 time or a duration"},
		{"since a day", logs(100, 10, "1d"), "is not an RFC 3339 time or a duration"},
		{"since with a space", logs(100, 10, "10m --tail=all"), "is not an RFC 3339 time or a duration"},
		{"logs of the operator's container", logs(101, 10, ""), "was not made by Proximity"},
		{"logs of a privileged container", logs(102, 10, ""), "is privileged"},
		{"logs without arguments", &pb.LiveRequest{Kind: "app_logs", Vmid: 100}, "a tail of 1-5000"},
		{"env", env(AppDir+"/.env", "ADMIN_TOKEN", "db_password"), ""},
		{"env of another file", env(AppDir+"/compose.yaml", "X"), "only the app's .env"},
		{"env out of the app", env("/root/.env", "X"), "inside the app's directory"},
		{"env through ..", env(AppDir+"/../app/.env", "X"), "inside the app's directory"},
		{"env without names", env(AppDir + "/.env"), "1-100 names"},
		{"env of too many names", env(AppDir+"/.env", many...), "1-100 names"},
		{"env of a name that is not one", env(AppDir+"/.env", "A=B"), "is not a variable name"},
		{"env without arguments", &pb.LiveRequest{Kind: "read_env", Vmid: 100}, "only the app's .env"},
		{"another kind", &pb.LiveRequest{Kind: "exec", Vmid: 100}, `live request kind "exec"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Policy{}.CheckLive(t.Context(), policyNode, c.req)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse) || failureOf(err) != taskspec.FailInvalid):
				t.Fatalf("got %v, want a refusal with %q", err, c.refuse)
			}
		})
	}
}
