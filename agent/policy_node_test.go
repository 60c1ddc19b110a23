package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// The test binary doubles as pct, vzdump and pveam for the simulated node.
func TestMain(m *testing.M) {
	pvesim.RunAsTool()
	os.Exit(m.Run())
}

// coordinatorStub is the leader as an agent sees it: it hands out the
// tasks it is given on the Work stream and keeps every reported event.
type coordinatorStub struct {
	pb.UnimplementedAgentServer
	tasks chan *pb.Task

	mu     sync.Mutex
	events []*pb.TaskEvent
	// The agent's Live stream, once open, and what came up it.
	live    pb.Agent_LiveServer
	replies chan *pb.LiveReply
}

func (c *coordinatorStub) Work(_ *pb.WorkRequest, st pb.Agent_WorkServer) error {
	index := uint64(1)
	if err := st.Send(&pb.WorkEvent{Index: index, Event: &pb.WorkEvent_SnapshotDone{SnapshotDone: &pb.SnapshotDone{}}}); err != nil {
		return err
	}
	for {
		select {
		case <-st.Context().Done():
			return nil
		case t := <-c.tasks:
			index++
			if err := st.Send(&pb.WorkEvent{Index: index, Event: &pb.WorkEvent_Task{Task: t}}); err != nil {
				return err
			}
		}
	}
}

func (c *coordinatorStub) Report(_ context.Context, req *pb.ReportRequest) (*pb.ReportResponse, error) {
	c.mu.Lock()
	c.events = append(c.events, req.Events...)
	c.mu.Unlock()
	return &pb.ReportResponse{HeartbeatIntervalMs: 100}, nil
}

// result waits for task id's result and returns it with the task's log.
func (c *coordinatorStub) result(t *testing.T, id string) (*pb.Result, []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		var res *pb.Result
		var lines []string
		for _, ev := range c.events {
			if ev.TaskId != id {
				continue
			}
			if r := ev.GetResult(); r != nil {
				res = r
			}
			if l, ok := ev.Event.(*pb.TaskEvent_Log); ok {
				lines = append(lines, l.Log)
			}
		}
		c.mu.Unlock()
		if res != nil {
			return res, lines
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no result for task %s", id)
	return nil, nil
}

// policyNodeHarness is a real agent on a simulated node, joined to a
// coordinator stub over mutual TLS.
type policyNodeHarness struct {
	sim   *simnode.Node
	coord *coordinatorStub
	agent *Agent
	n     int
}

func startPolicyNode(t *testing.T, policy Policy) *policyNodeHarness {
	t.Helper()
	const node = "pve1"
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	// The node's identity, as a join would have left it.
	key, csr, err := pki.NewKeyAndCSR(node)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.SignNode(csr, node, "enrolment-1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{keyFile: kp, certFile: pki.PEM("CERTIFICATE", cert), caFile: pki.PEM("CERTIFICATE", ca.CertDER)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serverCert, err := ca.ServerCert("stub", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})))
	coord := &coordinatorStub{tasks: make(chan *pb.Task, 16), replies: make(chan *pb.LiveReply, 1024)}
	pb.RegisterAgentServer(srv, coord)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	sim, err := simnode.Start(dir, node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	a, err := New(Config{Node: node, Coordinators: []string{lis.Addr().String()}, DataDir: dir, Runtime: sim.Runtime,
		Version: "test", Policy: policy, InventoryEvery: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &policyNodeHarness{sim: sim, coord: coord, agent: a}
}

// run hands the agent a task and waits for its result.
func (h *policyNodeHarness) run(t *testing.T, kind string, vmid int, spec any) (*pb.Result, []string) {
	t.Helper()
	h.n++
	tk := &pb.Task{Id: fmt.Sprintf("task-%d-%s", h.n, kind), Kind: kind, Vmid: uint32(vmid), Fence: uint64(h.n), Attempt: 1}
	if spec != nil {
		tk.SpecJson, _ = json.Marshal(spec)
	}
	h.coord.tasks <- tk
	return h.coord.result(t, tk.Id)
}

func (h *policyNodeHarness) mustRun(t *testing.T, kind string, vmid int, spec any) {
	t.Helper()
	if res, _ := h.run(t, kind, vmid, spec); !res.Ok {
		t.Fatalf("%s: %s (%s)", kind, res.Error, res.ErrorKind)
	}
}

// state is the simulated node's whole state: containers with their
// configuration and files, storages, backups, templates.
func (h *policyNodeHarness) state(t *testing.T) string {
	t.Helper()
	var out []byte
	err := h.sim.Store.View(func(n *pvesim.Node) error {
		var err error
		out, err = json.Marshal(n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// refused runs an attack and checks that the node's policy refused it,
// with a reason that reaches the task's log, and that the node is as it
// was.
func (h *policyNodeHarness) refused(t *testing.T, kind string, vmid int, spec any, reason string) {
	t.Helper()
	before := h.state(t)
	res, lines := h.run(t, kind, vmid, spec)
	want := "refused by this node's policy (/etc/proximity/agent.yaml): " + reason
	if res.Ok || !strings.Contains(res.Error, want) {
		t.Errorf("%s: ok=%v error %q, want %q", kind, res.Ok, res.Error, want)
	}
	if res.ErrorKind != "invalid" {
		t.Errorf("%s: error kind %q, want invalid (the coordinator does not retry it)", kind, res.ErrorKind)
	}
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], want) {
		t.Errorf("%s: the task's log does not say why: %q", kind, lines)
	}
	if after := h.state(t); after != before {
		t.Errorf("%s changed the node:\nbefore %s\nafter  %s", kind, before, after)
	}
}

// TestPolicyRefusesAttacksOnASimulatedNode runs a real agent, over mTLS,
// against the simulated node: the deploy flow's own tasks run, and a
// privileged create, a mount point of the node's root, commands and files
// outside the app are refused with the rule in the task's log, leaving the
// node as it was.
func TestPolicyRefusesAttacksOnASimulatedNode(t *testing.T) {
	h := startPolicyNode(t, Policy{Source: "/etc/proximity/agent.yaml"})
	const app, other = 100, 101
	create := taskspec.CreateSpec{Template: "debian-13-standard_13.6-1_amd64.tar.zst", Hostname: "web", MemoryMB: 512, DiskGB: 2,
		Net0: "name=eth0,bridge=vmbr0,ip=dhcp", Tags: []string{"app-nginx"}, Start: true}
	h.mustRun(t, taskspec.Create, app, create)
	h.mustRun(t, taskspec.Exec, app, taskspec.ExecSpec{Argv: []string{"sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl"}})
	h.mustRun(t, taskspec.Push, app, taskspec.PushSpec{Path: AppDir + "/compose.yaml", Content: []byte("services: {}\n"), Perms: "0644"})

	t.Run("privileged create", func(t *testing.T) {
		priv := create
		priv.Hostname, priv.Privileged = "root-on-the-node", true
		h.refused(t, taskspec.Create, other, priv, "privileged containers are not allowed (allow_privileged: false)")
	})
	t.Run("mount point set", func(t *testing.T) {
		h.refused(t, taskspec.SetConfig, app, taskspec.ConfigSpec{Set: map[string]string{"mp0": "/,mp=/host"}}, `pct set of key "mp0" is not allowed`)
	})
	t.Run("exec outside the app", func(t *testing.T) {
		h.refused(t, taskspec.Exec, app, taskspec.ExecSpec{Argv: []string{"sh", "-c", "rm /var/lib/pvesim/packages"}},
			`exec of ["sh" "-c" "rm /var/lib/pvesim/packages"] is not one of the deploy flow's commands`)
	})
	t.Run("push outside the app", func(t *testing.T) {
		h.refused(t, taskspec.Push, app, taskspec.PushSpec{Path: AppDir + "/../../../etc/cron.d/proximity", Content: []byte("* * * * * root sh /x\n")},
			`push to "/opt/proximity/app/../../../etc/cron.d/proximity": files may only be written inside the app's directory`)
	})
}
