package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/server"
)

// testServer is a coordinator server started in-process for a test, and
// what proximityctl needs to reach it.
type testServer struct {
	addr   string // PROXIMITY_ADDR: https://HOST:PORT
	caCert string // PROXIMITY_CACERT: <data-dir>/ca.pem
	srv    *server.Server
}

// startServer starts a single-server cluster and returns it with its
// first admin token, once the token and the CA certificate are written.
// Password hashing is cheap (the format and the checks are the same).
var parallelTests sync.Map

func startServer(t *testing.T) (testServer, string) {
	t.Helper()
	// Each test's server has its own loopback address and spends most of
	// its time waiting: the tests that start one run side by side.
	if _, done := parallelTests.LoadOrStore(t, true); !done && !strings.Contains(t.Name(), "/") {
		t.Parallel()
	}
	host := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	at := func(p int) string { return net.JoinHostPort(host, fmt.Sprint(p)) }
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if _, err := cluster.WriteNewKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(server.Config{
		NodeID: "ctl", DataDir: t.TempDir(), HTTPAddr: at(7300), RaftAddr: at(7301), GossipAddr: at(7302), GRPCAddr: at(7303),
		ClusterKeyFile: keyFile, Timing: cluster.TestTiming(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard,
		PasswordParams: &auth.Params{Time: 1, MemoryKiB: 1024, Threads: 1, KeyLen: 32},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	token, err := srv.WaitAdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := srv.WaitCACert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The new cluster's leader loads the starter catalog moments after it
	// is elected; a person would see it before deploying.
	for loaded := false; !loaded; time.Sleep(20 * time.Millisecond) {
		srv.Cluster().FSM().Read(func(s *fsm.State) { loaded = s.Catalog != nil })
		if ctx.Err() != nil {
			t.Fatal("the starter catalog was not loaded")
		}
	}
	return testServer{addr: srv.URL(), caCert: ca, srv: srv}, token
}

// ctl runs proximityctl against ts with the given token, verifying the
// server with its CA as an operator would.
func ctl(t *testing.T, ts testServer, token string, args ...string) (int, string, string) {
	t.Helper()
	return ctlEnv(t, map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_TOKEN": token, "PROXIMITY_CACERT": ts.caCert}, args...)
}

// ctlEnv runs proximityctl with exactly the environment env and returns
// its exit status, standard output and standard error.
func ctlEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestReservationsCommandLine(t *testing.T) {
	ts, token := startServer(t)
	code, out, errs := ctl(t, ts, token, "reservations", "create", "web", "--node", "pve1", "--ports", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	var r reservation
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.VMID != 10000 || len(r.PublicPorts) != 2 || r.Hostname != "web" {
		t.Fatalf("create output: %v %s", err, out)
	}
	code, out, _ = ctl(t, ts, token, "reservations", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], "30000,30001") {
		t.Fatalf("list table: %d\n%s", code, out)
	}
	if code, out, _ = ctl(t, ts, token, "reservations", "get", r.ID, "-o", "json"); code != 0 || !strings.Contains(out, r.ID) {
		t.Fatalf("get: %d %s", code, out)
	}
	// A refusal exits 1 and shows the detail and the request ID.
	code, _, errs = ctl(t, ts, token, "reservations", "create", "WEB", "--node", "pve1")
	if code != 1 || !strings.Contains(errs, "is taken") || !strings.Contains(errs, "request req_") {
		t.Fatalf("conflict: %d %s", code, errs)
	}
	if code, _, errs = ctl(t, ts, token, "reservations", "delete", r.ID); code != 0 {
		t.Fatalf("delete: %d %s", code, errs)
	}
	if code, _, _ = ctl(t, ts, token, "reservations", "get", r.ID); code != 1 {
		t.Fatalf("get after delete: %d", code)
	}
}

func TestCommandLineUsersClusterSettings(t *testing.T) {
	ts, token := startServer(t)
	code, out, errs := ctl(t, ts, token, "users", "create", "bob", "-o", "json")
	var u user
	if code != 0 || json.Unmarshal([]byte(out), &u) != nil || u.Role != "user" {
		t.Fatalf("users create: %d %s %s", code, out, errs)
	}
	code, out, _ = ctl(t, ts, token, "users", "token", u.ID, "-o", "json")
	var tok struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, "pxt_") {
		t.Fatalf("users token: %d %s", code, out)
	}
	// Bob is not an admin.
	if code, _, errs = ctl(t, ts, tok.Token, "reservations", "list"); code != 1 || !strings.Contains(errs, "403") {
		t.Fatalf("user listing reservations: %d %s", code, errs)
	}
	if code, out, _ = ctl(t, ts, token, "cluster"); code != 0 || !strings.Contains(out, "voter (leader)") || !strings.Contains(out, "Secrets sealed with key ") || strings.Contains(out, "sealed with key -") {
		t.Fatalf("cluster: %d %s", code, out)
	}
	code, out, errs = ctl(t, ts, token, "settings", "set-network", "--subnet", "10.5.0.0/24", "--gateway", "10.5.0.1", "--dns", "10.5.0.1", "--bridge", "vmbr0")
	if code != 0 || !strings.Contains(out, "10.5.0.0/24") {
		t.Fatalf("set-network: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, token, "settings", "set-network", "--subnet", "10.5.0.0/24", "--gateway", "10.6.0.1"); code != 1 || !strings.Contains(errs, "gateway") {
		t.Fatalf("bad set-network: %d %s", code, errs)
	}
}

func TestCommandLineNeedsAddressAndToken(t *testing.T) {
	if code, _, errs := ctlEnv(t, map[string]string{"PROXIMITY_TOKEN": "x"}, "cluster"); code != 2 || !strings.Contains(errs, "PROXIMITY_ADDR") {
		t.Fatalf("no address: %d %s", code, errs)
	}
	if code, _, errs := ctlEnv(t, map[string]string{"PROXIMITY_ADDR": "https://127.0.0.1:1"}, "cluster"); code != 2 || !strings.Contains(errs, "PROXIMITY_TOKEN") {
		t.Fatalf("no token: %d %s", code, errs)
	}
	if code, _, _ := ctlEnv(t, map[string]string{"PROXIMITY_ADDR": "https://127.0.0.1:1", "PROXIMITY_TOKEN": "x"}, "cluster", "--output", "yaml"); code == 0 {
		t.Fatal("bad --output accepted")
	}
}

func TestJoinTokensAndNodesCommandLine(t *testing.T) {
	ts, token := startServer(t)
	var code int
	var out, errs string
	deadline := time.Now().Add(10 * time.Second)
	for { // the cluster CA is created just after the first election
		code, out, errs = ctl(t, ts, token, "join-tokens", "create", "--node", "pve7", "--ttl", "10m", "-o", "json")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var tok struct{ Token, Node string }
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, "pxj_") || tok.Node != "pve7" {
		t.Fatalf("join-tokens create: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, token, "join-tokens", "create", "--ttl", "10s"); code == 0 || !strings.Contains(errs, "ttl_seconds") {
		t.Fatalf("too short a ttl: %d %s", code, errs)
	}
	if code, out, errs = ctl(t, ts, token, "nodes"); code != 0 || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("nodes: %d %q %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, token, "node", "remove", "pve7"); code == 0 || !strings.Contains(errs, "pve7 is not enrolled") {
		t.Fatalf("node remove of a node that never joined: %d %s", code, errs)
	}
}
