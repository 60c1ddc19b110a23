package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/pki"
)

// TestOutsiderRaftRPCGetsNoAnswerAndChangesNothing replays the measured
// attack: hashicorp/raft's own TCP client sends AppendEntries with a
// higher term and a command that would create an admin. The server port
// speaks only mutual TLS under the cluster key, so the RPC gets no answer
// and the log does not move.
func TestOutsiderRaftRPCGetsNoAnswerAndChangesNothing(t *testing.T) {
	tc := newTestCluster(t, 1)
	srv := tc.nodes[0].server()
	r := srv.Cluster().Raft()
	before := r.LastIndex()
	term := r.CurrentTerm()

	cmd, _ := json.Marshal(fsm.Command{Type: fsm.CmdCreateUser, RequestID: "evil", CreateUser: &fsm.CreateUserCmd{
		User: fsm.User{ID: "usr_evil", Name: "evil", Role: fsm.RoleAdmin}}})
	trans, err := raft.NewTCPTransportWithLogger(net.JoinHostPort(tc.host, "0"), nil, 1, 2*time.Second, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries("c1", raft.ServerAddress(tc.nodes[0].cfg.RaftAddr), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("rogue"), Addr: []byte("rogue")}, Term: term + 1,
		PrevLogEntry: before, PrevLogTerm: term, LeaderCommitIndex: before + 1,
		Entries: []*raft.Log{{Index: before + 1, Term: term + 1, Type: raft.LogCommand, Data: append([]byte{1}, cmd...)}},
	}, &resp)
	if err == nil {
		t.Fatalf("the server answered an outsider's AppendEntries: %+v", resp)
	}
	// Garbage that is not TLS gets no answer either.
	c, err := net.DialTimeout("tcp", tc.nodes[0].cfg.RaftAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(6 * time.Second))
	_, _ = c.Write([]byte("\x00\x01garbage that is not a TLS handshake\n"))
	if n, err := c.Read(make([]byte, 64)); err == nil || n > 0 {
		t.Fatalf("the server port answered %d bytes to garbage", n)
	}
	c.Close()

	if got := r.CurrentTerm(); got != term {
		t.Fatalf("term moved from %d to %d", term, got)
	}
	if got := r.LastIndex(); got != before {
		t.Fatalf("the log moved from %d to %d", before, got)
	}
	var users int
	srv.Cluster().FSM().Read(func(s *fsm.State) { users = len(s.Users) })
	if users != 1 {
		t.Fatalf("%d users, want the admin alone", users)
	}
}

// TestGossipWithoutTheKeyCannotJoin: a memberlist with no key (or
// another key) cannot join the servers' gossip pool.
func TestGossipWithoutTheKeyCannotJoin(t *testing.T) {
	tc := newTestCluster(t, 1)
	for _, key := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
		mc := memberlist.DefaultLocalConfig()
		mc.Name = fmt.Sprintf("rogue-%d", len(key))
		mc.BindAddr, mc.BindPort = tc.host, 0
		mc.AdvertiseAddr = tc.host
		mc.LogOutput = io.Discard
		if key != nil {
			mc.SecretKey = key
		}
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ml.Join([]string{tc.nodes[0].cfg.GossipAddr})
		if err == nil || n != 0 {
			t.Errorf("key %v: joined %d members (err %v)", key != nil, n, err)
		}
		if got := ml.NumMembers(); got != 1 {
			t.Errorf("key %v: the rogue sees %d members", key != nil, got)
		}
		_ = ml.Shutdown()
	}
	var in cluster.Info
	if st, err := tc.call(0, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err != nil || st != 200 || len(in.Members) != 1 {
		t.Fatalf("cluster: %d %v %+v", st, err, in.Members)
	}
}

// TestServerWithAnotherKeyNeverBecomesAMember starts a stock server with
// its own key that joins the cluster's gossip address: it is never added,
// as voter or otherwise, and the cluster keeps its quorum when it dies.
func TestServerWithAnotherKeyNeverBecomesAMember(t *testing.T) {
	tc := newTestCluster(t, 1)
	rogue := tc.addJoiner()
	rogue.cfg.ClusterKeyFile = filepath.Join(tc.dir, "rogue.key")
	if _, err := cluster.WriteNewKeyFile(rogue.cfg.ClusterKeyFile); err != nil {
		t.Fatal(err)
	}
	tc.start(1)
	// Give it many reconcile rounds.
	time.Sleep(20 * cluster.TestTiming().Reconcile)
	var in cluster.Info
	if st, err := tc.call(0, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err != nil || st != 200 {
		t.Fatalf("cluster: %d %v", st, err)
	}
	if len(in.Members) != 1 || in.Members[0].ID != "c1" {
		t.Fatalf("members %+v, want c1 alone", in.Members)
	}
	if in := rogue.server().Cluster().Raft().GetConfiguration(); in.Error() == nil && len(in.Configuration().Servers) != 0 {
		t.Fatalf("the rogue holds a configuration: %+v", in.Configuration().Servers)
	}
	var ca bool
	rogue.server().Cluster().FSM().Read(func(s *fsm.State) { ca = s.CA != nil })
	if ca {
		t.Fatal("the rogue received the cluster CA")
	}
	tc.kill(1)
	if st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "still-up", "node": "pve1"}, nil, nil); err != nil || st != 201 {
		t.Fatalf("reserve after the rogue died: %d %v", st, err)
	}
}

// TestNonVoterThatDiesCostsNoQuorum: a server that joins is a non-voter
// until it has been healthy for the stabilization time; one that dies
// before that leaves the cluster's quorum as it was.
func TestNonVoterThatDiesCostsNoQuorum(t *testing.T) {
	// The leader promotes after its own stabilization time: make it long.
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) { cfg.Timing.Stabilization = time.Hour }))
	tc.addJoiner()
	tc.start(1)
	deadline := time.Now().Add(15 * time.Second)
	var in cluster.Info
	for {
		if st, err := tc.call(0, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err == nil && st == 200 && len(in.Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c2 not added: %+v", in.Members)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range in.Members {
		if m.ID == "c2" && m.Suffrage != "nonvoter" {
			t.Fatalf("c2 joined as %s", m.Suffrage)
		}
	}
	tc.kill(1)
	if st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "quorum-kept", "node": "pve1"}, nil, nil); err != nil || st != 201 {
		t.Fatalf("reserve with the non-voter dead: %d %v", st, err)
	}
}

// TestNewServerIsPromotedOnceHealthy: with the default rule a joining
// server becomes a voter after the stabilization time.
func TestNewServerIsPromotedOnceHealthy(t *testing.T) {
	// Two voters: the first server keeps the timing of a cluster.
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) { cfg.Timing = cluster.TestTiming() }))
	tc.addJoiner()
	tc.start(1)
	sawNonvoter := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		var in cluster.Info
		if st, err := tc.call(0, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err == nil && st == 200 {
			for _, m := range in.Members {
				if m.ID == "c2" && m.Suffrage == "nonvoter" {
					sawNonvoter = true
				}
				if m.ID == "c2" && m.Suffrage == "voter" {
					if !sawNonvoter {
						t.Fatal("c2 became a voter without being a non-voter first")
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("c2 not promoted (saw non-voter: %v)", sawNonvoter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPlainHTTPToTheAPIIsRefused: the API speaks HTTPS only; a plain
// request never gets an answer from a route, and /metrics needs a token.
func TestPlainHTTPToTheAPIIsRefused(t *testing.T) {
	tc := newTestCluster(t, 1)
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/api/v1/cluster", "/metrics"} {
		resp, err := plain.Get("http://" + tc.nodes[0].cfg.HTTPAddr + path)
		if err != nil {
			continue // refused outright: fine
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("http://…%s answered %d, want 400", path, resp.StatusCode)
		}
	}
	// A client that does not trust the cluster CA refuses the server.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(tc.nodes[0].url() + "/healthz"); err == nil {
		t.Error("an unverified client accepted the server's certificate")
	}
	if st, _, _ := tc.raw(0, "GET", "/metrics", "", "", nil); st != 401 {
		t.Errorf("/metrics without a token: %d, want 401", st)
	}
	if st, _, b := tc.raw(0, "GET", "/metrics", tc.token, "", nil); st != 200 || !bytes.Contains(b, []byte("# HELP")) {
		t.Errorf("/metrics with a token: %d", st)
	}
	// X-Proximity-Forwarded on the public port is ignored: the request
	// ID it would let a caller choose is not taken.
	_, h, _ := tc.raw(0, "GET", "/api/v1/cluster", tc.token, "", map[string]string{"X-Proximity-Forwarded": "c9", "X-Request-Id": "req_chosen_by_caller"})
	if h.Get("X-Request-Id") == "req_chosen_by_caller" {
		t.Error("the public port trusted X-Proximity-Forwarded")
	}
}

// TestRawFilesHoldNoPrivateKey scans every file of every server's data
// directory (raft.db, snapshots) and the captured logs for the cluster
// CA's private key in any encoding: DER, PEM, and base64 of either.
func TestRawFilesHoldNoPrivateKey(t *testing.T) {
	buf := &lockedBuffer{}
	tc := newTestClusterWith(t, 3, logsTo(buf))
	// Some traffic, then a snapshot on every server, so the state is in
	// snapshots as well as in the log.
	for i := 0; i < 5; i++ {
		tc.reserve(fmt.Sprintf("scan%d", i), "pve1")
	}
	for _, n := range tc.nodes {
		if err := n.server().Cluster().Raft().Snapshot().Error(); err != nil {
			t.Fatalf("snapshot %s: %v", n.cfg.NodeID, err)
		}
	}
	ca := tc.nodes[0].server().Agents().CA()
	if ca == nil {
		t.Fatal("no CA")
	}
	pemKey := pki.PEM("EC PRIVATE KEY", ca.KeyDER)
	needles := map[string][]byte{
		"DER":           ca.KeyDER,
		"PEM":           pemKey,
		"base64 of DER": []byte(base64.StdEncoding.EncodeToString(ca.KeyDER)),
		"base64 of PEM": []byte(base64.StdEncoding.EncodeToString(pemKey)),
	}
	if raw, err := ca.Key.Bytes(); err == nil {
		needles["raw scalar"] = raw
	} else {
		t.Fatal(err)
	}
	// The measured leak: the base64 of a SEC1 key starts like this.
	needles["SEC1 base64 prefix"] = []byte("MHcCAQEEI")
	if files := tc.scanDataDirs("the CA key", needles); files < 3*3 {
		t.Fatalf("scanned only %d files", files)
	}
	logs := buf.String()
	if !strings.Contains(logs, "leading") {
		t.Fatal("the logs were not captured")
	}
	for what, needle := range needles {
		if strings.Contains(logs, string(needle)) {
			t.Errorf("the logs hold the CA key (%s)", what)
		}
	}
	// The snapshot really holds the CA, sealed.
	var sealed bool
	tc.nodes[1].server().Cluster().FSM().Read(func(s *fsm.State) { sealed = s.CA != nil && s.CA.Key != nil && s.CA.KeyDER == nil })
	if !sealed {
		t.Fatal("the CA key is not sealed in the state")
	}
}

// TestKeyRotationOnALiveClusterLosesNothing rotates the cluster key of a
// live three-server cluster the documented way (install the new key
// beside the old, make it primary, wait for the secrets to be sealed
// with it, remove the old) while a client keeps reserving through every
// server: every request succeeds, every acknowledged reservation is on
// every server afterwards, and a server restarted with the new key
// alone rejoins.
func TestKeyRotationOnALiveClusterLosesNothing(t *testing.T) {
	tc := newTestCluster(t, 3)
	oldText, err := os.ReadFile(tc.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newFile := filepath.Join(tc.dir, "new.key")
	newKey, err := cluster.WriteNewKeyFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	newText, _ := os.ReadFile(newFile)
	oldKeys, err := cluster.ParseKeys(oldText)
	if err != nil {
		t.Fatal(err)
	}
	writeKeys := func(parts ...[]byte) {
		t.Helper()
		if err := os.WriteFile(tc.keyFile, bytes.Join(parts, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reloadAll := func() error {
		for _, n := range tc.nodes {
			if err := n.server().Reload(); err != nil {
				return fmt.Errorf("%s: %w", n.cfg.NodeID, err)
			}
		}
		return nil
	}
	// Skipping the steps is refused: a server given only the new key
	// could no longer open the secrets, so it keeps the old keyring.
	writeKeys(newText)
	if err := reloadAll(); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("reload with the sealing key missing: %v", err)
	}

	stop := make(chan struct{})
	type result struct {
		acked []string
		errs  []string
	}
	done := make(chan result)
	// acked counts the reservations made so far; each step of the
	// rotation lasts until a few more were made under it.
	var acked atomic.Int64
	underLoad := func(step string) {
		t.Helper()
		want := acked.Load() + 7
		waitFor(t, "reservations made after "+step, 30*time.Second, func() bool { return acked.Load() >= want })
	}
	go func() {
		var r result
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- r
				return
			default:
			}
			host := fmt.Sprintf("rot%d", i)
			st, err := tc.call(i%3, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": host, "node": "pve1"}, nil, nil)
			if err != nil || st != 201 {
				r.errs = append(r.errs, fmt.Sprintf("%s via c%d: %d %v", host, i%3+1, st, err))
				continue
			}
			r.acked = append(r.acked, host)
			acked.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()

	writeKeys(oldText, newText) // install
	if err := reloadAll(); err != nil {
		t.Fatalf("install: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	underLoad("install")
	writeKeys(newText, oldText) // use
	if err := reloadAll(); err != nil {
		t.Fatalf("use: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var in cluster.Info
		if st, err := tc.call(0, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err == nil && st == 200 && in.SealedBy == newKey.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the secrets were not sealed with the new key")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	underLoad("use")
	writeKeys(newText) // remove
	if err := reloadAll(); err != nil {
		t.Fatalf("remove: %v", err)
	}
	time.Sleep(time.Second)
	underLoad("remove")
	close(stop)
	r := <-done
	if len(r.errs) > 0 {
		t.Fatalf("%d of %d requests failed during the rotation, first: %s", len(r.errs), len(r.errs)+len(r.acked), r.errs[0])
	}
	if len(r.acked) < 20 {
		t.Fatalf("only %d reservations made during the rotation", len(r.acked))
	}
	var in cluster.Info
	if st, err := tc.call(1, "GET", "/api/v1/cluster", tc.token, nil, nil, &in); err != nil || st != 200 {
		t.Fatalf("cluster: %d %v", st, err)
	}
	for _, m := range in.Members {
		if len(m.Keys) != 1 || m.Keys[0] != newKey.ID() || m.Suffrage != "voter" {
			t.Errorf("member %s after the rotation: keys %v, %s (want [%s], voter)", m.ID, m.Keys, m.Suffrage, newKey.ID())
		}
	}
	// A server restarted with the new key alone rejoins and serves.
	tc.kill(2)
	tc.start(2)
	if st, err := tc.call(2, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "after-rotation", "node": "pve1"}, nil, nil); err != nil || st != 201 {
		t.Fatalf("reserve via the restarted server: %d %v", st, err)
	}
	if len(tc.listAll(2)) != len(r.acked)+1 {
		t.Fatalf("the restarted server lists %d reservations, want %d", len(tc.listAll(2)), len(r.acked)+1)
	}
	for i := range tc.nodes {
		have := map[string]bool{}
		for _, res := range tc.listAll(i) {
			have[res.Hostname] = true
		}
		for _, h := range r.acked {
			if !have[h] {
				t.Errorf("c%d lost the acknowledged reservation %s", i+1, h)
			}
		}
	}
	// The old key alone no longer opens the secrets, and a server with it
	// cannot take part: its gossip and TLS are another cluster's.
	if oldKeys.Primary().ID() == newKey.ID() {
		t.Fatal("the keys are the same")
	}
}

// TestOperatorCertificateReloadedOnSIGHUP: with --tls-cert-file and
// --tls-key-file the API serves the operator's certificate, and Reload
// (SIGHUP) takes a replaced one without a restart.
func TestOperatorCertificateReloadedOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	host := freeLoopbackHost(t)
	issue := func(name string) *x509.CertPool {
		t.Helper()
		ca, err := pki.NewCA(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ca.APICert(name, []string{host}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, pki.PEM("CERTIFICATE", c.Certificate[0]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pki.PEM("PRIVATE KEY", keyDER), 0o600); err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		return pool
	}
	first := issue("first")
	tc := &testCluster{t: t, host: host, dir: t.TempDir(), clock: &clock{}}
	tc.keyFile = filepath.Join(tc.dir, "cluster.key")
	if _, err := cluster.WriteNewKeyFile(tc.keyFile); err != nil {
		t.Fatal(err)
	}
	n := tc.nodeConfig(0, 1)
	n.cfg.TLSCertFile, n.cfg.TLSKeyFile = certFile, keyFile
	tc.nodes = append(tc.nodes, n)
	tc.start(0)
	t.Cleanup(tc.stopAll)
	tc.waitLeader()
	served := func(pool *x509.CertPool) string {
		t.Helper()
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer cl.CloseIdleConnections()
		resp, err := cl.Get(n.url() + "/healthz")
		if err != nil {
			return "refused: " + err.Error()
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(first); got != "first" {
		t.Fatalf("the operator's certificate: %s", got)
	}
	second := issue("second")
	if got := served(first); got != "first" {
		t.Fatalf("replaced before the reload: %s", got)
	}
	if err := n.server().Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(second); got != "second" {
		t.Fatalf("after the reload: %s", got)
	}
	// A broken pair is refused and the served certificate stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.server().Reload(); err == nil {
		t.Fatal("a broken key file was accepted")
	}
	if got := served(second); got != "second" {
		t.Fatalf("after a refused reload: %s", got)
	}
}

// scanDataDirs reads every file of every server's data directory and
// reports each that holds one of the needles; it returns how many files
// it read, so a caller can tell the scan saw something.
func (tc *testCluster) scanDataDirs(secret string, needles map[string][]byte) int {
	tc.t.Helper()
	files := 0
	for _, n := range tc.nodes {
		err := filepath.WalkDir(n.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			for what, needle := range needles {
				if bytes.Contains(b, needle) {
					tc.t.Errorf("%s holds %s (%s)", p, secret, what)
				}
			}
			return nil
		})
		if err != nil {
			tc.t.Fatal(err)
		}
	}
	return files
}
