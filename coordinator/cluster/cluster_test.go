package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/testutil"
)

// loopbackHost picks a random 127.x.y.z on which the ports servers(n)
// uses are free, so parallel test binaries never collide.
func loopbackHost(t *testing.T) string {
	t.Helper()
	for range 50 {
		host := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
		l, err := net.Listen("tcp", net.JoinHostPort(host, "7301"))
		if err == nil {
			l.Close()
			return host
		}
	}
	t.Fatal("no free loopback address")
	return ""
}

// testServer is one server of a test cluster on host.
type testServer struct {
	t      *testing.T
	cfg    Config
	c      *Cluster
	leads  atomic.Int32 // terms OnLeaderReady was called for
	closed bool
}

// serverConfig is server i's configuration: its own ports on host, its
// own data directory under dir, timings for one machine.
func serverConfig(t *testing.T, host, dir string, i int, ks Keys) Config {
	base := 7300 + i*4
	addr := func(off int) string { return net.JoinHostPort(host, strconv.Itoa(base+off)) }
	timing := TestTiming()
	timing.Reconcile = 100 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PROXIMITY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Config{
		NodeID: fmt.Sprintf("c%d", i+1), DataDir: filepath.Join(dir, fmt.Sprintf("c%d", i+1)),
		RaftAddr: addr(0), GossipAddr: addr(1), HTTPAddr: addr(2), GRPCAddr: addr(3),
		Keys: ks, Timing: timing, Logger: log.With("server", i+1), LogOutput: io.Discard,
	}
}

// open starts a server; it is shut down when the test ends.
func open(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{t: t, cfg: cfg}
	cfg.OnLeaderReady = func(ctx context.Context, c *Cluster) { ts.leads.Add(1) }
	c, err := Open(cfg, fsm.New(0))
	if err != nil {
		t.Fatalf("open %s: %v", cfg.NodeID, err)
	}
	ts.c = c
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	if !ts.closed {
		ts.closed = true
		ts.c.Shutdown()
	}
}

func (ts *testServer) waitLeader() {
	ts.t.Helper()
	testutil.UntilTrue(ts.t, 15*time.Second, ts.cfg.NodeID+" leads", ts.c.IsLeader)
}

func (ts *testServer) propose(cmd fsm.Command) fsm.Result {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ts.c.Propose(ctx, cmd)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		ts.t.Fatalf("propose %s on %s: %v", cmd.Type, ts.cfg.NodeID, err)
	}
	return res
}

// suffrage is each member's suffrage as ts's Info shows it.
func (ts *testServer) suffrage() map[string]string {
	ts.t.Helper()
	in, err := ts.c.Info()
	if err != nil {
		ts.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range in.Members {
		out[m.ID] = m.Suffrage
	}
	return out
}

func token(id string) fsm.Command {
	return fsm.Command{Type: fsm.CmdJoinToken, RequestID: "tok/" + id, JoinToken: &fsm.JoinToken{
		ID: id, Hash: strings.Repeat("a", 63) + id[len(id)-1:], ExpiresAt: time.Now().Add(time.Hour)}}
}

func hasToken(f *fsm.FSM, id string) bool {
	found := false
	f.Read(func(s *fsm.State) {
		for _, tk := range s.JoinTokens {
			found = found || tk.ID == id
		}
	})
	return found
}

// TestConfigIsCheckedBeforeAnythingStarts: a server refuses a
// configuration it could not serve: no ID, an ID with a slash, no data
// directory, an address others cannot reach or without a fixed port, no
// cluster key, an expect out of range.
func TestConfigIsCheckedBeforeAnythingStarts(t *testing.T) {
	ks := testKeys(t)
	good := Config{NodeID: "c1", DataDir: "/d", RaftAddr: "10.0.0.1:7001", GossipAddr: "10.0.0.1:7002", HTTPAddr: "10.0.0.1:8443", Keys: ks}
	if err := checkConfig(&good); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"no id":          {func(c *Config) { c.NodeID = "" }, "--node-id"},
		"slash":          {func(c *Config) { c.NodeID = "a/b" }, "--node-id"},
		"no dir":         {func(c *Config) { c.DataDir = "" }, "--data-dir"},
		"unspecified":    {func(c *Config) { c.RaftAddr = "0.0.0.0:7001" }, "--raft-addr"},
		"port 0":         {func(c *Config) { c.GossipAddr = "10.0.0.1:0" }, "--gossip-addr"},
		"no port":        {func(c *Config) { c.HTTPAddr = "10.0.0.1" }, "--http-addr"},
		"no key":         {func(c *Config) { c.Keys = nil }, "--cluster-key-file"},
		"expect too big": {func(c *Config) { c.BootstrapExpect = 8 }, "--bootstrap-expect"},
		"expect below 0": {func(c *Config) { c.BootstrapExpect = -1 }, "--bootstrap-expect"},
		// Gossip carries at most 512 bytes of a server's announcement.
		"long addresses": {func(c *Config) {
			long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".example"
			c.RaftAddr, c.GossipAddr, c.HTTPAddr = long+":7001", long+":7002", long+":8443"
		}, "gossip announcement"},
		"many keys": {func(c *Config) { c.Keys = manyKeys(t, 30) }, "remove retired keys"},
	} {
		cfg := good
		tc.change(&cfg)
		if err := checkConfig(&cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
}

// A configuration of long names, every address given and a rotation under
// way (three keys) fits in gossip's announcement.
func TestLongNamesAndThreeKeysFitGossip(t *testing.T) {
	host := strings.Repeat("c", 40) + ".proximity.example.internal"
	cfg := Config{NodeID: strings.Repeat("n", 40), DataDir: "/d", RaftAddr: host + ":7001", GossipAddr: host + ":7002",
		HTTPAddr: host + ":8443", GRPCAddr: host + ":7003", BootstrapExpect: 5, Keys: manyKeys(t, 3)}
	if err := checkConfig(&cfg); err != nil {
		t.Fatal(err)
	}
}

// manyKeys is a keyring of n new keys.
func manyKeys(t *testing.T, n int) Keys {
	var ks Keys
	for range n {
		ks = append(ks, testKeys(t)...)
	}
	return ks
}

// TestDataDirectoryBelongsToOneNode: the node ID is written on first use
// and a directory of another ID is refused; the boot ID is made once and
// read back the same.
func TestDataDirectoryBelongsToOneNode(t *testing.T) {
	dir := t.TempDir()
	if err := claimNodeID(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := claimNodeID(dir, "c1"); err != nil {
		t.Fatalf("the same ID again: %v", err)
	}
	if err := claimNodeID(dir, "c2"); err == nil || !strings.Contains(err.Error(), `belongs to node "c1"`) {
		t.Fatalf("another ID: %v", err)
	}
	p := filepath.Join(dir, "boot-id")
	a, err := loadOrCreate(p)
	if err != nil || len(a) != 16 {
		t.Fatalf("boot id %q: %v", a, err)
	}
	if b, _ := loadOrCreate(p); b != a {
		t.Fatalf("boot id read back as %q, made as %q", b, a)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("boot id file mode %o", st.Mode().Perm())
	}
}

// TestJoinCandidatesAndMissingServers: a server alone joins every address
// it knows (--join, the peers it saved, the servers the state records),
// once each and never its own; a server in the pool joins only the
// recorded servers it does not see alive over gossip.
func TestJoinCandidatesAndMissingServers(t *testing.T) {
	f := fsm.New(0)
	for i, sv := range []fsm.Server{
		{ID: "c1", RaftAddr: "10.0.0.1:7001", GossipAddr: "10.0.0.1:7002", BootID: "b1"},
		{ID: "c2", RaftAddr: "10.0.0.2:7001", GossipAddr: "10.0.0.2:7002", BootID: "b2"},
		{ID: "c3", RaftAddr: "10.0.0.3:7001", GossipAddr: "10.0.0.3:7002", BootID: "b3"},
		{ID: "c4", RaftAddr: "10.0.0.4:7001", BootID: "b4"}, // no gossip address recorded
	} {
		if err := f.ApplyCommands(uint64(i+1), fsm.Command{Type: fsm.CmdUpsertServer, RequestID: sv.ID, UpsertServer: &sv})[0].Err(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	c := &Cluster{cfg: Config{NodeID: "c1", DataDir: dir, GossipAddr: "10.0.0.1:7002", Join: []string{"10.0.0.9:7002", "10.0.0.2:7002"}},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), fsm: f, live: map[string]meta{}, protocols: map[string]int{}, events: make(chan struct{}, 1)}
	if err := os.WriteFile(c.peersFile(), []byte(`["10.0.0.8:7002","10.0.0.9:7002"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.9:7002", "10.0.0.2:7002", "10.0.0.8:7002", "10.0.0.3:7002"}
	if got := c.joinCandidates(); !slices.Equal(got, want) {
		t.Fatalf("join candidates %v, want %v", got, want)
	}
	seen := func(m meta) {
		b, _ := json.Marshal(m)
		c.track(&memberlist.Node{Name: m.ID, Meta: b}, true)
	}
	seen(meta{ID: "c2", Raft: "10.0.0.2:7001", Gossip: "10.0.0.2:7002"})
	if got := c.missingServers(); !slices.Equal(got, []string{"10.0.0.3:7002"}) {
		t.Fatalf("missing %v, want c3's gossip address", got)
	}
	seen(meta{ID: "c3", Raft: "10.0.0.3:7001", Gossip: "10.0.0.3:7002"})
	if got := c.missingServers(); len(got) != 0 {
		t.Fatalf("missing %v with every recorded server alive", got)
	}
	// The live servers are remembered for the next start, without this one.
	seen(meta{ID: "c1", Raft: "10.0.0.1:7001", Gossip: "10.0.0.1:7002"})
	c.savePeers()
	b, _ := os.ReadFile(c.peersFile())
	if string(b) != `["10.0.0.2:7002","10.0.0.3:7002"]` {
		t.Fatalf("saved peers %s", b)
	}
	// An unreadable peers file is passed over.
	if err := os.WriteFile(c.peersFile(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := c.joinCandidates(); !slices.Equal(got, []string{"10.0.0.9:7002", "10.0.0.2:7002", "10.0.0.3:7002"}) {
		t.Fatalf("join candidates with a damaged peers file: %v", got)
	}
	// A server whose announcement is not valid is not counted alive.
	c.track(&memberlist.Node{Name: "c3", Meta: []byte("{")}, true)
	if got := c.missingServers(); !slices.Equal(got, []string{"10.0.0.3:7002"}) {
		t.Fatalf("missing %v after c3's bad announcement", got)
	}
}

// TestSingleServerBootstrapsLeadsAndRestarts: a server expecting one
// server bootstraps alone on loopback, leads, serves proposals and
// linearizable reads, records itself in the state, and after a restart
// from its data directory leads again with its state (it never
// bootstraps twice).
func TestSingleServerBootstrapsLeadsAndRestarts(t *testing.T) {
	t.Parallel() // each on its own loopback address and data directory
	host, dir, ks := loopbackHost(t), t.TempDir(), testKeys(t)
	cfg := serverConfig(t, host, dir, 0, ks)
	cfg.BootstrapExpect = 1
	s := open(t, cfg)
	s.waitLeader()
	if s.leads.Load() != 1 {
		t.Fatalf("OnLeaderReady ran %d times", s.leads.Load())
	}
	s.propose(token("tk1"))
	if err := s.c.ReadIndex(context.Background()); err != nil {
		t.Fatalf("a read on the leader: %v", err)
	}
	if !s.c.Ready() {
		t.Fatal("the leader is not ready")
	}
	testutil.Until(t, 10*time.Second, "c1's record in the state", func() error {
		var sv fsm.Server
		s.c.FSM().Read(func(st *fsm.State) { sv, _ = st.Server("c1") })
		if sv.RaftAddr != cfg.RaftAddr || sv.GossipAddr != cfg.GossipAddr || sv.HTTPAddr != cfg.HTTPAddr || sv.BootID != s.c.BootID() {
			return fmt.Errorf("record %+v", sv)
		}
		return nil
	})
	in, err := s.c.Info()
	if err != nil {
		t.Fatal(err)
	}
	if in.Self.State != "leader" || in.Leader.ID != "c1" || in.Leader.HTTPAddr != cfg.HTTPAddr || len(in.Members) != 1 ||
		in.Members[0].Suffrage != "voter" || in.Members[0].Protocol != fsm.ProtocolVersion || in.StateDigest == "" {
		t.Fatalf("info %+v", in)
	}
	if id, addr, ok := s.c.Leader(); !ok || id != "c1" || addr != cfg.HTTPAddr {
		t.Fatalf("leader %q %q %v", id, addr, ok)
	}
	if err := s.c.HandOff(); err != nil {
		t.Fatalf("hand-off with no other voter: %v", err)
	}
	if _, err := s.c.Forward(nil); err != ErrNoLeader {
		t.Fatalf("forwarding from the leader: %v", err)
	}
	if err := s.c.RemoveServer(context.Background(), "c9", "rm"); !problem.Is(err, problem.NotFound) {
		t.Fatalf("removing a server that is not a member: %v", err)
	}
	boot := s.c.BootID()
	s.close()

	other := cfg
	other.NodeID = "c2"
	if _, err := Open(other, fsm.New(0)); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("c2 opening c1's data directory: %v", err)
	}
	again := open(t, cfg)
	again.waitLeader()
	if again.c.BootID() != boot {
		t.Fatalf("boot id %s after a restart, was %s", again.c.BootID(), boot)
	}
	if !hasToken(again.c.FSM(), "tk1") {
		t.Fatal("the state did not survive the restart")
	}
	if got := again.suffrage(); len(got) != 1 || got["c1"] != "voter" {
		t.Fatalf("members after the restart: %v", got)
	}
}

// TestKeyRotationKeepsSecretsOpen: a server refuses a key file without
// the key its secrets are sealed with; with the new key first and the old
// one kept, the leader seals the secrets (the CA key, the OIDC client
// secret) anew under the new key, after which the old key can go.
func TestKeyRotationKeepsSecretsOpen(t *testing.T) {
	t.Parallel() // each on its own loopback address and data directory
	host, dir := loopbackHost(t), t.TempDir()
	oldKeys, newKeys := testKeys(t), testKeys(t)
	s := open(t, serverConfig(t, host, dir, 0, oldKeys))
	s.waitLeader()
	caKey := []byte("the cluster CA's private key")
	sealed, err := s.c.Sealer().Seal(fsm.CAKeyPurpose, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s.propose(fsm.Command{Type: fsm.CmdSetCA, RequestID: "ca", SetCA: &fsm.CAState{CertDER: []byte("cert"), Key: sealed}})
	secret, err := s.c.Sealer().Seal(fsm.OIDCSecretPurpose, []byte("client secret"))
	if err != nil {
		t.Fatal(err)
	}
	s.propose(fsm.Command{Type: fsm.CmdSetOIDC, RequestID: "oidc", SetOIDC: &fsm.OIDCSettings{Issuer: "https://idp.example",
		ClientID: "proximity", ClientSecret: secret, RedirectURL: "https://proximity.example" + fsm.OIDCCallbackPath}})
	if got := s.c.SealedBy(); got != oldKeys.Primary().ID() {
		t.Fatalf("sealed by %q, want the old key %q", got, oldKeys.Primary().ID())
	}
	if err := s.c.ReloadKeys(newKeys); err == nil {
		t.Fatal("a key file without the sealing key was taken")
	}
	if err := s.c.ReloadKeys(nil); err == nil {
		t.Fatal("an empty keyring was taken")
	}
	// Gossip could not announce thirty fingerprints: refused, and the keys
	// in force stay.
	if err := s.c.ReloadKeys(append(Keys{oldKeys.Primary()}, manyKeys(t, 29)...)); err == nil || !strings.Contains(err.Error(), "remove retired keys") {
		t.Fatalf("thirty keys: %v, want refused", err)
	}
	if got := s.c.Keys().IDs(); !slices.Equal(got, oldKeys.IDs()) {
		t.Fatalf("keys in force after a refused reload: %v", got)
	}
	both := Keys{newKeys.Primary(), oldKeys.Primary()}
	if err := s.c.ReloadKeys(both); err != nil {
		t.Fatal(err)
	}
	if got := s.c.Keys().IDs(); !slices.Equal(got, both.IDs()) {
		t.Fatalf("keys in force %v", got)
	}
	testutil.Until(t, 10*time.Second, "the CA key sealed under the new key", func() error {
		if got := s.c.SealedBy(); got != newKeys.Primary().ID() {
			return fmt.Errorf("sealed by %q", got)
		}
		return nil
	})
	if err := s.c.ReloadKeys(newKeys); err != nil {
		t.Fatalf("dropping the old key once nothing is sealed with it: %v", err)
	}
	var ca *fsm.CAState
	var oidc fsm.OIDCSettings
	s.c.FSM().Read(func(st *fsm.State) { ca, oidc = st.CA, *st.OIDC })
	plain, err := s.c.Sealer().Open(fsm.CAKeyPurpose, ca.Key)
	if err != nil || string(plain) != string(caKey) {
		t.Fatalf("the CA key under the new key alone: %q %v", plain, err)
	}
	plain, err = s.c.Sealer().Open(fsm.OIDCSecretPurpose, oidc.ClientSecret)
	if err != nil || string(plain) != "client secret" {
		t.Fatalf("the OIDC client secret under the new key alone: %q %v", plain, err)
	}
}

// TestSecondServerJoinsIsPromotedAndTakesOver: a server started with
// --join is added by the leader as a non-voter, promoted to voter only
// once it has been healthy for the stabilization time of the leader's
// clock, takes the leadership when the leader hands it off, and removes
// the old leader, which is then never added back.
func TestSecondServerJoinsIsPromotedAndTakesOver(t *testing.T) {
	t.Parallel() // each on its own loopback address and data directory
	host, dir, ks := loopbackHost(t), t.TempDir(), testKeys(t)
	clk := testutil.NewClock(time.Now())
	cfg1 := serverConfig(t, host, dir, 0, ks)
	cfg1.Now = clk.Now
	cfg1.Timing.Stabilization = time.Hour // of the fake clock
	s1 := open(t, cfg1)
	s1.waitLeader()
	cfg2 := serverConfig(t, host, dir, 1, ks)
	cfg2.Join = []string{cfg1.GossipAddr}
	s2 := open(t, cfg2)
	testutil.Until(t, 15*time.Second, "c2 added as a non-voter", func() error {
		if got := s1.suffrage(); got["c2"] != "nonvoter" {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
	// c2 catches up; the leader sees it healthy at every reconcile, but
	// its clock has not moved.
	testutil.UntilTrue(t, 15*time.Second, "c2 caught up", func() bool {
		return s2.c.Raft().AppliedIndex() >= s1.c.Raft().AppliedIndex() && s2.c.Ready()
	})
	if got := s1.suffrage(); got["c2"] != "nonvoter" {
		t.Fatalf("c2 promoted with no stabilization time on the leader's clock: %v", got)
	}
	// The leader may first see c2 healthy only after a move of its clock:
	// each look moves it on by the stabilization time.
	testutil.Until(t, 15*time.Second, "c2 promoted to voter", func() error {
		if got := s1.suffrage(); got["c2"] != "voter" {
			clk.Advance(time.Hour)
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
	// The progress a server reports counts only what its state machine
	// has applied (the last entries now are configuration changes, which
	// it never sees).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s1.c.fetchStatus(ctx, cfg2.RaftAddr)
	if err != nil || st.ID != "c2" {
		t.Fatalf("c2's status: %+v %v", st, err)
	}
	if applied := s2.c.FSM().AppliedIndex(); st.Applied > applied {
		t.Fatalf("c2 reports index %d applied; its state machine has applied %d", st.Applied, applied)
	}
	// A write the leader waits for is in force on the other server when
	// WaitApplied returns.
	res := s1.propose(token("tk1"))
	if err := s1.c.WaitApplied(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	if !hasToken(s2.c.FSM(), "tk1") {
		t.Fatal("WaitApplied returned before c2 applied the write")
	}
	// A request forwarded over the server port reaches the leader's
	// handler with the sender's ID.
	s1.c.ServeForwarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromServer(r.Context())
		fmt.Fprintf(w, "%s %v %s", id, ok, r.URL.Path)
	}))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://any/api/v1/apps", nil)
	resp, err := s2.c.Forward(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "c2 true /api/v1/apps" {
		t.Fatalf("forwarded answer %q", body)
	}

	if err := s1.c.HandOff(); err != nil {
		t.Fatalf("hand-off: %v", err)
	}
	s2.waitLeader()
	if s1.c.IsLeader() {
		t.Fatal("c1 still leads after its hand-off")
	}
	if id, _, ok := s1.c.Leader(); !ok || id != "c2" {
		t.Fatalf("c1 sees leader %q", id)
	}
	if _, err := s1.c.Propose(ctx, token("tk9")); err != proposer.ErrNotLeader {
		t.Fatalf("a proposal on a follower: %v", err)
	}
	if err := s1.c.ReadIndex(ctx); err != proposer.ErrNotLeader {
		t.Fatalf("a linearizable read on a follower: %v", err)
	}
	if err := s1.c.HandOff(); err != nil {
		t.Fatalf("a follower's hand-off: %v", err)
	}
	if err := s1.c.RemoveServer(context.Background(), "c1", "rm-c1"); err != proposer.ErrNotLeader {
		t.Fatalf("a follower removing a server: %v", err)
	}
	if err := s2.c.RemoveServer(context.Background(), "c1", "rm-c1"); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, "c1 out of the configuration", func() error {
		if got := s2.suffrage(); len(got) != 1 || got["c2"] != "voter" {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
	var tomb string
	s2.c.FSM().Read(func(st *fsm.State) { tomb = st.Tombstones["c1"] })
	if tomb != s1.c.BootID() {
		t.Fatalf("tombstone %q, want c1's boot id %q", tomb, s1.c.BootID())
	}
	// c1 is still alive over gossip: reconciles go on, and it stays out.
	s2.propose(token("tk2"))
	if got := s2.suffrage(); len(got) != 1 {
		t.Fatalf("a removed server was added back: %v", got)
	}
}

// TestTwoServersExpectingTwoBootstrapTogether: servers started with
// --bootstrap-expect 2 wait until they see each other over gossip, then
// both bootstrap the same configuration: two voters from the start, one
// leader, and a write on it reaches the other.
func TestTwoServersExpectingTwoBootstrapTogether(t *testing.T) {
	t.Parallel() // each on its own loopback address and data directory
	host, dir, ks := loopbackHost(t), t.TempDir(), testKeys(t)
	cfg1, cfg2 := serverConfig(t, host, dir, 0, ks), serverConfig(t, host, dir, 1, ks)
	cfg1.BootstrapExpect, cfg2.BootstrapExpect = 2, 2
	cfg2.Join = []string{cfg1.GossipAddr}
	s1 := open(t, cfg1)
	s2 := open(t, cfg2)
	var leader, other *testServer
	testutil.UntilTrue(t, 15*time.Second, "a leader", func() bool {
		switch {
		case s1.c.IsLeader():
			leader, other = s1, s2
		case s2.c.IsLeader():
			leader, other = s2, s1
		}
		return leader != nil
	})
	if got := leader.suffrage(); len(got) != 2 || got["c1"] != "voter" || got["c2"] != "voter" {
		t.Fatalf("members %v, want two voters", got)
	}
	leader.propose(token("tk1"))
	testutil.UntilTrue(t, 10*time.Second, "the other server applied tk1", func() bool { return hasToken(other.c.FSM(), "tk1") })
	// CatchUp: once it returns, the follower has applied what the leader
	// had acknowledged (each write is checked at once, with no wait).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range "23456789abcdef" { // token's hash ends in the ID's last digit
		id := "catch-" + string(c)
		leader.propose(token(id))
		if err := other.c.CatchUp(ctx); err != nil {
			t.Fatalf("catch up after %s: %v", id, err)
		}
		if !hasToken(other.c.FSM(), id) {
			t.Fatalf("the follower caught up but lacks %s", id)
		}
	}
	if err := leader.c.CatchUp(ctx); err != nil {
		t.Fatalf("the leader catching up with itself: %v", err)
	}
}
