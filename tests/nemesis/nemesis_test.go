package nemesis

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
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/testutil"
)

const (
	coordinators = 3
	agents       = 5
	users        = 3
	resClients   = 3
	resHosts     = 8
)

// proc is one process the test runs: a coordinator (inside its namespace)
// or an agent. Its output goes to its log file in the artifacts directory.
type proc struct {
	name string
	argv []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== nemesis: start %s at %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done, p.paused = cmd, done, false
	return nil
}

// pid is the process's ID (0 before its first start).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.paused = false
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (p *proc) signal(s syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(s)
		p.paused = s == syscall.SIGSTOP
	}
}

// world is everything one run holds.
type world struct {
	t      *testing.T
	art    string
	prefix string // 10.A.B
	nss    []string
	coords []*proc
	agents []*proc
	token  string
	client *http.Client
	cat    *catalogPub
	// agentBin is the agent's binary (symbolic links resolved): the
	// simulated nodes run it as pct, so their workers are its processes.
	agentBin string
	userTok  map[string]string // user ID → API token
	heals    counters          // how hung workers were healed
	taken    sync.Map          // "node/vmid" → true: containers the nemesis made behind our back

	logMu sync.Mutex
	logF  *os.File

	tdMu      sync.Mutex
	teardowns []func()
	tdOnce    sync.Once
}

// onTeardown adds to what teardown undoes, last added first.
func (w *world) onTeardown(f func()) {
	w.tdMu.Lock()
	defer w.tdMu.Unlock()
	w.teardowns = append(w.teardowns, f)
}

// teardown stops every process and removes the namespaces and the bridge,
// once: at the test's end, and also on SIGINT/SIGTERM and shortly before
// go test's -timeout (which would end the binary with no cleanup).
func (w *world) teardown() {
	w.tdOnce.Do(func() {
		w.tdMu.Lock()
		fs := w.teardowns
		w.tdMu.Unlock()
		for i := len(fs) - 1; i >= 0; i-- {
			fs[i]()
		}
	})
}

func (w *world) logf(format string, args ...any) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	line := fmt.Sprintf("%8.3fs ", time.Since(runStart).Seconds()) + fmt.Sprintf(format, args...)
	fmt.Fprintln(w.logF, line)
	if testing.Verbose() {
		fmt.Println(line)
	}
}

var runStart = time.Now()

func (w *world) coordIP(i int) string { return fmt.Sprintf("%s.%d", w.prefix, 11+i) }
func (w *world) addr(i, off int) string {
	return net.JoinHostPort(w.coordIP(i), strconv.Itoa(7400+off))
}
func (w *world) grpcAddrs() string {
	var out []string
	for i := 0; i < coordinators; i++ {
		out = append(out, w.addr(i, 3))
	}
	return strings.Join(out, ",")
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// network makes the bridge and one namespace per coordinator, each with a
// veth pair on the bridge; the cleanup removes them whatever happens.
func (w *world) network() {
	t := w.t
	id := fmt.Sprintf("%04x", rand.IntN(0x10000))
	w.prefix = fmt.Sprintf("10.%d.%d", 100+rand.IntN(100), rand.IntN(250))
	br := "nmb" + id
	w.onTeardown(func() {
		for _, ns := range w.nss {
			_ = run("ip", "netns", "del", ns)
		}
		for i := 0; i < coordinators; i++ {
			_ = run("ip", "link", "del", fmt.Sprintf("nmv%s%d", id, i))
		}
		_ = run("ip", "link", "del", br)
	})
	must := func(args ...string) {
		t.Helper()
		if err := run("ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	must("link", "add", br, "type", "bridge")
	must("addr", "add", w.prefix+".1/24", "dev", br)
	must("link", "set", br, "up")
	for i := 0; i < coordinators; i++ {
		ns := fmt.Sprintf("nemesis-%s-c%d", id, i+1)
		host, peer := fmt.Sprintf("nmv%s%d", id, i), fmt.Sprintf("nmp%s%d", id, i)
		must("netns", "add", ns)
		w.nss = append(w.nss, ns)
		must("link", "add", host, "type", "veth", "peer", "name", peer)
		must("link", "set", peer, "netns", ns)
		must("link", "set", host, "master", br, "up")
		must("-n", ns, "addr", "add", w.coordIP(i)+"/24", "dev", peer)
		must("-n", ns, "link", "set", peer, "up")
		must("-n", ns, "link", "set", "lo", "up")
	}
}

// partition drops, inside coordinator i's namespace, every packet to or
// from the other coordinators (agents on the bridge still reach it).
func (w *world) partition(i int) error {
	var others []string
	for j := 0; j < coordinators; j++ {
		if j != i {
			others = append(others, w.coordIP(j))
		}
	}
	set := strings.Join(others, ", ")
	script := fmt.Sprintf(`table inet nemesis {
	chain in { type filter hook input priority 0; policy accept; ip saddr { %s } drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr { %s } drop; }
}
`, set, set)
	cmd := exec.Command("ip", "netns", "exec", w.nss[i], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", w.nss[i], err, out)
	}
	return nil
}

func (w *world) heal(i int) {
	_ = run("ip", "netns", "exec", w.nss[i], "nft", "delete", "table", "inet", "nemesis")
}

// api answers one request to coordinator i.
func (w *world) api(i int, tok, method, path string, body any, key string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+w.addr(i, 0)+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call retries a request through random servers until it gets an answer
// that is not 5xx or the deadline passes; writes carry an idempotency key,
// so a retry is the same operation.
func (w *world) call(tok, method, path string, body any, key string, within time.Duration) (int, []byte) {
	deadline := time.Now().Add(within)
	var st int
	var raw []byte
	for {
		var err error
		st, raw, err = w.api(rand.IntN(coordinators), tok, method, path, body, key)
		if err == nil && st < 500 {
			return st, raw
		}
		if err == nil && st != 503 && st != 502 && st != 504 {
			w.logf("server error %d on %s %s: %s", st, method, path, bytes.TrimSpace(raw))
		}
		if time.Now().After(deadline) {
			if err != nil {
				return 0, []byte(err.Error())
			}
			return st, raw
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type clusterInfo struct {
	Self struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"self"`
	Leader struct {
		ID string `json:"id"`
	} `json:"leader"`
	CommitIndex uint64 `json:"commit_index"`
	StateDigest string `json:"state_digest"`
	DigestIndex uint64 `json:"digest_index"`
}

func (w *world) info(i int) (clusterInfo, bool) {
	var in clusterInfo
	st, raw, err := w.api(i, w.token, "GET", "/api/v1/cluster", nil, "")
	if err != nil || st != 200 || json.Unmarshal(raw, &in) != nil {
		return in, false
	}
	return in, true
}

// leader answers the index of the coordinator a majority-side server
// names as leader, or -1.
func (w *world) leader() int {
	for i := 0; i < coordinators; i++ {
		if in, ok := w.info(i); ok && in.Self.State == "leader" {
			return i
		}
	}
	return -1
}

type appOut struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Hostname    string `json:"hostname"`
	VMID        int    `json:"vmid"`
	Node        string `json:"node"`
	Owner       string `json:"owner"`
	PublicPorts []int  `json:"public_ports"`
	Operation   string `json:"operation"`
	Step        string `json:"step"`
	Error       string `json:"error"`

	CatalogID       string  `json:"catalog_id"`
	CatalogVersion  string  `json:"catalog_version"`
	UpdateAvailable *string `json:"update_available"`
}

type backupOut struct {
	ID        string    `json:"id"`
	AppID     string    `json:"app_id"`
	Status    string    `json:"status"`
	Error     string    `json:"error"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

type reservation struct {
	ID       string `json:"id"`
	VMID     int    `json:"vmid"`
	Hostname string `json:"hostname"`
	Node     string `json:"node"`
}

// listAll reads every page of a list through random servers.
func listAll[T any](w *world, tok, path string) ([]T, error) {
	var all []T
	for pg := 1; ; pg++ {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		st, raw := w.call(tok, "GET", fmt.Sprintf("%s%spage=%d&per_page=100", path, sep, pg), nil, "", 30*time.Second)
		if st != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", path, st, raw)
		}
		var p struct {
			Items []T `json:"items"`
			Total int `json:"total"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if len(p.Items) == 0 || len(all) >= p.Total {
			return all, nil
		}
	}
}

// counters are the run's figures.
type counters struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counters) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

func (c *counters) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, c.m[k])
	}
	return strings.TrimSpace(b.String())
}

func (c *counters) total(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// TestNemesis is make nemesis: see the package comment.
func TestNemesis(t *testing.T) {
	durText := os.Getenv("NEMESIS_DURATION")
	if durText == "" {
		t.Skip("the nemesis runs with NEMESIS_DURATION set: make nemesis SEED=N DURATION=90s")
	}
	duration, err := time.ParseDuration(durText)
	if err != nil || duration <= 0 {
		t.Fatalf("NEMESIS_DURATION=%q: want a Go duration such as 90s", durText)
	}
	seed := rand.Uint64() % 1_000_000
	if s := os.Getenv("NEMESIS_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NEMESIS_SEED=%q: want a number", s)
		}
	}
	fmt.Printf("nemesis: SEED=%d DURATION=%s\n", seed, duration)
	if os.Geteuid() != 0 {
		t.Skip("the nemesis needs root: network namespaces, a bridge and nftables")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the nemesis needs %s (iproute2, nftables)", tool)
		}
	}
	art, err := os.MkdirTemp("", fmt.Sprintf("proximity-nemesis-seed%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	keep := os.Getenv("NEMESIS_KEEP") != ""
	t.Cleanup(func() {
		if t.Failed() || keep {
			fmt.Printf("nemesis: SEED=%d artifacts (history, every process's log) in %s\n", seed, art)
			return
		}
		_ = os.RemoveAll(art)
	})
	logF, err := os.Create(filepath.Join(art, "nemesis.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logF.Close() })
	_ = os.WriteFile(filepath.Join(art, "seed"), []byte(fmt.Sprintf("SEED=%d DURATION=%s\n", seed, duration)), 0o644)
	w := &world{t: t, art: art, logF: logF}
	runStart = time.Now()
	t.Cleanup(w.teardown)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var watchdog <-chan time.Time
	if d, ok := t.Deadline(); ok {
		watchdog = time.After(time.Until(d) - 20*time.Second)
	}
	testDone := make(chan struct{})
	defer close(testDone)
	go func() {
		select {
		case <-testDone:
			return
		case s := <-sigs:
			fmt.Printf("nemesis: %v: tearing down; SEED=%d artifacts in %s\n", s, seed, art)
		case <-watchdog:
			fmt.Printf("nemesis: the test's deadline is near: tearing down; SEED=%d artifacts in %s\n", seed, art)
		}
		w.teardown()
		os.Exit(1)
	}()

	coordBin, agentBin := binaries(t, art)
	if w.agentBin, err = filepath.EvalSymlinks(agentBin); err != nil {
		t.Fatal(err)
	}
	w.network()

	if w.cat, err = newCatalog(w, filepath.Join(art, "catalog")); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(art, "cluster.key")
	if err := run(coordBin, "keygen", "--out", keyFile); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < coordinators; i++ {
		name := fmt.Sprintf("c%d", i+1)
		w.coords = append(w.coords, &proc{name: name, log: filepath.Join(art, name+".log"), argv: []string{
			"ip", "netns", "exec", w.nss[i], coordBin, "server", "--node-id", name,
			"--data-dir", filepath.Join(art, name),
			"--http-addr", w.addr(i, 0), "--raft-addr", w.addr(i, 1), "--gossip-addr", w.addr(i, 2), "--grpc-addr", w.addr(i, 3),
			"--bootstrap-expect", "3", "--join", w.addr(0, 2), "--cluster-key-file", keyFile,
			"--catalog-dir", w.cat.dir}})
	}
	// Processes stop before the network goes (teardown runs last first),
	// hung workers too (a hung worker outlives its agent).
	w.onTeardown(func() {
		for _, p := range append(append([]*proc{}, w.coords...), w.agents...) {
			p.kill()
		}
		w.killWorkers()
	})
	for _, p := range w.coords {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	var caPEM []byte
	deadline := time.Now().Add(60 * time.Second)
	for (w.token == "" || caPEM == nil) && time.Now().Before(deadline) {
		for i := 1; i <= coordinators; i++ {
			if b, err := os.ReadFile(filepath.Join(art, fmt.Sprintf("c%d", i), "admin.token")); err == nil {
				w.token = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(art, fmt.Sprintf("c%d", i), "ca.pem")); err == nil {
				caPEM = b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w.token == "" || caPEM == nil {
		t.Fatal("no admin token and ca.pem within 60s")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	w.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}}
	until(t, "a leader", 60*time.Second, func() bool { return w.leader() >= 0 })

	// Agents, in the root namespace, reach every coordinator over the bridge.
	for n := 0; n < agents; n++ {
		st, raw := w.call(w.token, "POST", "/api/v1/join-tokens", nil, fmt.Sprintf("join-%d", n), 30*time.Second)
		var jt struct {
			Token string `json:"token"`
		}
		if st != 201 || json.Unmarshal(raw, &jt) != nil || jt.Token == "" {
			t.Fatalf("join token: %d %s", st, raw)
		}
		node := fmt.Sprintf("pve%d", n+1)
		p := &proc{name: node, log: filepath.Join(art, node+".log"), argv: []string{agentBin, "--node", node,
			"--coordinator", w.grpcAddrs(), "--data-dir", filepath.Join(art, node), "--simulate",
			"--advertise-addr", fmt.Sprintf("%s.%d", w.prefix, 101+n), "--join-token", jt.Token}}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		// Later starts use the saved certificate, not the spent token.
		p.argv = p.argv[:len(p.argv)-2]
		w.agents = append(w.agents, p)
	}
	until(t, "every node ready", 90*time.Second, func() bool { return w.nodesReady() })
	w.logf("cluster up: 3 coordinators, %d nodes ready", agents)

	// Users, each with an API token.
	tokens := make([]string, users)
	w.userTok = map[string]string{}
	for u := range tokens {
		st, raw := w.call(w.token, "POST", "/api/v1/users", map[string]any{"name": fmt.Sprintf("user%d", u), "role": "user"}, fmt.Sprintf("user-%d", u), 30*time.Second)
		var usr struct {
			ID string `json:"id"`
		}
		if (st != 201 && st != 200) || json.Unmarshal(raw, &usr) != nil {
			t.Fatalf("user: %d %s", st, raw)
		}
		st, raw = w.call(w.token, "POST", "/api/v1/users/"+usr.ID+"/tokens", map[string]any{"name": "nemesis"}, fmt.Sprintf("token-%d", u), 30*time.Second)
		var tok struct {
			Token string `json:"token"`
		}
		if st != 201 || json.Unmarshal(raw, &tok) != nil {
			t.Fatalf("token: %d %s", st, raw)
		}
		tokens[u] = tok.Token
		w.userTok[usr.ID] = tok.Token
	}

	// The workload and the nemesis, until the duration is over.
	stop := make(chan struct{})
	ops := &counters{}
	faults := &counters{}
	wl := newWorkload(w, seed, tokens, ops)
	w.cat.wl = wl
	var wg sync.WaitGroup
	for u := range tokens {
		wg.Add(1)
		go func() { defer wg.Done(); wl.user(u, stop) }()
	}
	reg := newRegistryHistory(w)
	for c := 0; c < resClients; c++ {
		wg.Add(1)
		go func() { defer wg.Done(); reg.client(c, stop) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.cat.publisher(seed, stop, ops) }()
	nemDone := make(chan struct{})
	go func() { defer close(nemDone); w.nemesis(seed, stop, faults) }()
	time.Sleep(duration)
	close(stop)
	<-nemDone
	w.logf("nemesis over: %s", faults)

	// Heal: no partition, nothing paused, every process up, no simulator
	// fault; then wait for a leader, every node ready, every operation ended.
	healStart := time.Now()
	w.healAll()
	until(t, "a leader after healing", 60*time.Second, func() bool { return w.leader() >= 0 })
	wg.Wait()
	until(t, "every node ready after healing", 90*time.Second, func() bool { return w.nodesReady() })
	reg.resolve()
	var apps []appOut
	settled := false
	settleBy := time.Now().Add(240 * time.Second)
	for n := 0; time.Now().Before(settleBy); n++ {
		if apps, err = listAll[appOut](w, w.token, "/api/v1/apps"); err == nil && w.settled(apps) {
			settled = true
			break
		}
		if n%10 == 9 {
			for _, a := range apps {
				if a.Operation != "" {
					w.logf("settling: app %s (%s) on %s: %s, step %s", a.ID, a.Hostname, a.Node, a.Operation, a.Step)
				}
			}
		}
		time.Sleep(time.Second)
	}
	healTime := time.Since(healStart)
	w.logf("healed in %s (settled: %v)", healTime.Round(100*time.Millisecond), settled)

	var problems []string
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		problems = append(problems, msg)
		w.logf("CHECK FAILED: %s", msg)
	}
	if !settled {
		for _, a := range apps {
			if a.Operation != "" {
				fail("app %s (%s) still in operation %s step %s after %s", a.ID, a.Hostname, a.Operation, a.Step, healTime.Round(time.Second))
			}
		}
	}
	w.checkOperations(apps, wl, fail)
	w.checkNodes(apps, fail)
	w.checkVersions(apps, w.cat, fail)
	w.checkForwards(apps, fail)
	w.checkHistory(reg, fail)
	w.checkDigests(fail)

	statuses := &counters{}
	for _, a := range apps {
		statuses.add(a.Status)
		if a.Status == "error" {
			w.logf("app %s (%s) ends in error: %s", a.ID, a.Hostname, a.Error)
		}
	}
	upDone, upFailed := w.updateOutcomes(apps)
	summary := fmt.Sprintf("SEED=%d DURATION=%s\napp operations accepted: %d (%s)\nupdates in the logs of the apps left: %d done, %d failed and rolled back\nregistry operations: %d (%s)\nfaults injected: %d (%s)\nhung workers healed: %s\ntime to heal: %s\napps at the end: %d (%s)\nproblems: %d\n",
		seed, duration, ops.total("accepted/"), ops, upDone, upFailed, len(reg.ops), reg.kinds(), faults.total(""), faults, w.heals.String(),
		healTime.Round(100*time.Millisecond), len(apps), statuses, len(problems))
	_ = os.WriteFile(filepath.Join(art, "summary.txt"), []byte(summary), 0o644)
	fmt.Print("nemesis: " + strings.ReplaceAll(summary, "\n", "\nnemesis: "))
	fmt.Println()
	if len(problems) > 0 {
		t.Fatalf("%d checks failed:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// binaries answers the coordinator (bin/ of make build, or NEMESIS_COORDINATOR)
// and an agent built with -tags simulate (NEMESIS_AGENT, or built here).
func binaries(t *testing.T, art string) (string, string) {
	coord := os.Getenv("NEMESIS_COORDINATOR")
	if coord == "" {
		coord = filepath.Join(art, "bin", "proximity-coordinator")
		build(t, coord, "github.com/proximity-ve/proximity/coordinator/cmd/proximity-coordinator")
	}
	agent := os.Getenv("NEMESIS_AGENT")
	if agent == "" {
		agent = filepath.Join(art, "bin", "proximity-agent")
		build(t, agent, "-tags", "simulate", "github.com/proximity-ve/proximity/agent/cmd/proximity-agent")
	}
	for _, b := range []string{coord, agent} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("binary: %v", err)
		}
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	return abs(coord), abs(agent)
}

func build(t *testing.T, out string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
}

func until(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (w *world) nodesReady() bool {
	type node struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	ns, err := listAll[node](w, w.token, "/api/v1/nodes")
	if err != nil {
		return false
	}
	ready := 0
	for _, n := range ns {
		if n.Status == "ready" {
			ready++
		}
	}
	return ready == agents
}

// settled: no app in an operation.
func (w *world) settled(apps []appOut) bool {
	for _, a := range apps {
		if a.Operation != "" {
			return false
		}
	}
	return true
}

func (w *world) simStore(n int) (*pvesim.Store, error) {
	node := fmt.Sprintf("pve%d", n+1)
	return pvesim.Open(filepath.Join(w.art, node, "pvesim"), node)
}

// healAll ends every fault.
func (w *world) healAll() {
	for i, p := range w.coords {
		w.heal(i)
		if p.alive() {
			p.signal(syscall.SIGCONT)
		} else if err := p.start(); err != nil {
			w.t.Errorf("restart %s: %v", p.name, err)
		}
	}
	for n, p := range w.agents {
		if st, err := w.simStore(n); err == nil {
			if err := st.SetFaults(pvesim.Faults{}); err != nil {
				w.t.Errorf("clear faults of %s: %v", p.name, err)
			}
		}
		if !p.alive() {
			if err := p.start(); err != nil {
				w.t.Errorf("restart %s: %v", p.name, err)
			}
		}
	}
	// Hung workers stay hung once their fault is cleared: their users
	// cancel, an admin stops what still hangs.
	for n := range w.agents {
		w.releaseHung(n, true, &w.heals)
	}
	w.logf("healed: no partition, nothing paused, every process up, no simulator fault, no hung worker")
}

// nemesis injects faults drawn from the seed until stop: one coordinator
// fault at a time (kill -9 of the leader or a follower, SIGSTOP, a
// partition of the leader or of any one), agent kills and simulator
// faults beside them.
func (w *world) nemesis(seed uint64, stop chan struct{}, faults *counters) {
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65))
	simUntil := make([]time.Time, agents)
	hangByUser := make([]*bool, agents) // node → a hang fault on, healed by its users first
	endSim := func(n int) {
		if st, err := w.simStore(n); err == nil {
			_ = st.SetFaults(pvesim.Faults{})
		}
		simUntil[n] = time.Time{}
		w.logf("pve%d: simulator faults cleared", n+1)
		if h := hangByUser[n]; h != nil {
			hangByUser[n] = nil
			w.releaseHung(n, *h, &w.heals)
		}
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	for {
		if !sleep(between(1500*time.Millisecond, 4*time.Second)) {
			return
		}
		// Simulator faults whose time is up are cleared.
		for n := range simUntil {
			if !simUntil[n].IsZero() && time.Now().After(simUntil[n]) {
				endSim(n)
			}
		}
		switch k := rng.IntN(10); k {
		case 0, 1: // kill -9 the leader or a follower, restart it
			l := w.leader()
			i, kind := l, "kill-leader"
			if k == 1 || l < 0 {
				i, kind = rng.IntN(coordinators), "kill-follower"
				if i == l {
					i = (i + 1) % coordinators
				}
			}
			faults.add(kind)
			w.logf("%s: kill -9 %s", kind, w.coords[i].name)
			w.coords[i].kill()
			ok := sleep(between(500*time.Millisecond, 4*time.Second))
			if err := w.coords[i].start(); err != nil {
				w.logf("restart %s: %v", w.coords[i].name, err)
			}
			w.logf("%s: %s restarted", kind, w.coords[i].name)
			if !ok {
				return
			}
		case 2: // pause one
			i := rng.IntN(coordinators)
			faults.add("pause")
			w.logf("pause: SIGSTOP %s", w.coords[i].name)
			w.coords[i].signal(syscall.SIGSTOP)
			ok := sleep(between(1*time.Second, 6*time.Second))
			w.coords[i].signal(syscall.SIGCONT)
			w.logf("pause: SIGCONT %s", w.coords[i].name)
			if !ok {
				return
			}
		case 3, 4: // partition the leader, or any one, from the rest
			i, kind := w.leader(), "partition-leader"
			if k == 4 || i < 0 {
				i, kind = rng.IntN(coordinators), "partition-one"
			}
			faults.add(kind)
			if err := w.partition(i); err != nil {
				w.logf("%s: %v", kind, err)
				continue
			}
			w.logf("%s: %s cut off from the other coordinators", kind, w.coords[i].name)
			ok := sleep(between(2*time.Second, 8*time.Second))
			w.heal(i)
			w.logf("%s: %s joined again", kind, w.coords[i].name)
			if !ok {
				return
			}
		case 5, 6: // kill an agent (one with work under way if any), restart it
			n := w.busyAgent(rng)
			faults.add("kill-agent")
			w.logf("kill-agent: kill -9 %s", w.agents[n].name)
			w.agents[n].kill()
			ok := sleep(between(300*time.Millisecond, 3*time.Second))
			if err := w.agents[n].start(); err != nil {
				w.logf("restart %s: %v", w.agents[n].name, err)
			}
			w.logf("kill-agent: %s restarted", w.agents[n].name)
			if !ok {
				return
			}
		default: // a simulator fault on one node
			k := rng.IntN(9)
			n := rng.IntN(agents)
			if k >= 7 {
				n = w.busyAgent(rng) // a hang on a node with work under way
			}
			if !simUntil[n].IsZero() {
				endSim(n) // the fault on it ends before the next
			}
			st, err := w.simStore(n)
			if err != nil {
				w.logf("pve%d: %v", n+1, err)
				continue
			}
			var f pvesim.Faults
			kind := ""
			switch k {
			case 0:
				f.LatencyMS, kind = 100+rng.IntN(400), "sim-latency"
			case 1:
				f.TaskMS, kind = 500+rng.IntN(2500), "sim-task-time"
			case 2:
				f.FailRate, kind = 0.2+0.3*rng.Float64(), "sim-fail-rate"
			case 3:
				f.FailNext, kind = 1+rng.IntN(3), "sim-fail-next"
			case 5:
				f.Fail, kind = []string{simTaskTypes[rng.IntN(len(simTaskTypes))]}, "sim-fail-type"
			case 6:
				f.Crash, kind = []string{simTaskTypes[rng.IntN(len(simTaskTypes))]}, "sim-crash"
			case 7, 8:
				// Healed when the fault ends: two times in three its
				// users cancel first (see releaseHung).
				byUser := rng.IntN(3) != 0
				f.Hang, kind = []string{w.hangType(n, rng)}, "sim-hang"
				hangByUser[n] = &byUser
			case 4:
				// A VMID taken behind our back, one the allocator may pick next.
				// The allocator hands out VMIDs upwards: one just above the
				// highest on any node is likely to be asked for soon.
				kind = "sim-take-vmid"
				vmid := w.highestVMID() + 1 + rng.IntN(3)
				faults.add(kind)
				if err := st.Take(vmid, false); err != nil {
					w.logf("%s pve%d %d: %v", kind, n+1, vmid, err)
					continue
				}
				w.taken.Store(fmt.Sprintf("pve%d/%d", n+1, vmid), true)
				w.logf("%s: pve%d container %d made behind our back", kind, n+1, vmid)
				continue
			}
			faults.add(kind)
			if err := st.SetFaults(f); err != nil {
				w.logf("%s pve%d: %v", kind, n+1, err)
				continue
			}
			lasts := between(2*time.Second, 8*time.Second)
			if kind == "sim-hang" {
				lasts = between(5*time.Second, 15*time.Second) // long enough to catch a worker
			}
			simUntil[n] = time.Now().Add(lasts)
			w.logf("%s: pve%d %+v", kind, n+1, f)
		}
	}
}

// highestVMID is the highest container VMID on any simulated node.
func (w *world) highestVMID() int {
	top := 100
	for n := 0; n < agents; n++ {
		st, err := w.simStore(n)
		if err != nil {
			continue
		}
		_ = st.View(func(node *pvesim.Node) error {
			for id := range node.CTs {
				top = max(top, id)
			}
			return nil
		})
	}
	return top
}

// simTaskTypes are the simulator's workers the faults name.
var simTaskTypes = []string{"vzcreate", "vzstart", "vzdump", "vzrestore", "vzdestroy", "vzsnapshot", "vzdelsnapshot", "vzclone"}

// busyAgent picks an agent whose node has a container locked by a task
// (work under way), or any.
func (w *world) busyAgent(rng *rand.Rand) int {
	var busy []int
	for n := 0; n < agents; n++ {
		st, err := w.simStore(n)
		if err != nil {
			continue
		}
		_ = st.View(func(node *pvesim.Node) error {
			for _, ct := range node.CTs {
				if ct.Lock != "" {
					busy = append(busy, n)
					break
				}
			}
			return nil
		})
	}
	if len(busy) > 0 {
		return busy[rng.IntN(len(busy))]
	}
	return rng.IntN(agents)
}

// workload: each user deploys, clones, backs up, restores, stops, starts
// and deletes small starter apps, without waiting for one operation to
// end before the next.
type workload struct {
	w      *world
	seed   uint64
	tokens []string
	ops    *counters

	mu      sync.Mutex
	created map[string]string // app ID → the operation that made it (deploy, clone)
	deleted map[string]bool   // app IDs a delete was sent for (an unanswered one may still delete)
	gone    map[string]bool   // app IDs whose delete was accepted
	backups map[string]string // backup ID → app ID
	// updateSent is when an update of the app was last asked for.
	updateSent map[string]time.Time
}

func newWorkload(w *world, seed uint64, tokens []string, ops *counters) *workload {
	return &workload{w: w, seed: seed, tokens: tokens, ops: ops,
		created: map[string]string{}, deleted: map[string]bool{}, updateSent: map[string]time.Time{}, gone: map[string]bool{}, backups: map[string]string{}}
}

var catalogApps = []string{"gotify", "memos"}

func (wl *workload) user(u int, stop chan struct{}) {
	w := wl.w
	rng := rand.New(rand.NewPCG(wl.seed, uint64(u+1)))
	tok := wl.tokens[u]
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond):
		}
		apps, err := listAll[appOut](w, tok, "/api/v1/apps")
		if err != nil {
			continue
		}
		var idle, updatable []appOut
		for _, a := range apps {
			if a.Operation == "" && (a.Status == "running" || a.Status == "stopped") {
				idle = append(idle, a)
				if a.UpdateAvailable != nil {
					updatable = append(updatable, a)
				}
			}
		}
		key := fmt.Sprintf("u%d-op%d-%d", u, n, wl.seed)
		host := fmt.Sprintf("u%d-%d", u, n)
		op := "deploy"
		var method, path string
		var body any
		r := rng.IntN(100)
		switch {
		case len(apps) < 2 || (len(apps) < 4 && r < 20) || len(idle) == 0:
			if len(apps) >= 5 {
				continue
			}
			method, path = "POST", "/api/v1/apps"
			body = map[string]any{"catalog_id": catalogApps[rng.IntN(len(catalogApps))], "hostname": host}
		default:
			a := idle[rng.IntN(len(idle))]
			switch {
			case r < 30 && len(apps) < 5:
				op, method, path, body = "clone", "POST", "/api/v1/apps/"+a.ID+"/clone", map[string]any{"hostname": host}
			case r < 45:
				op, method, path = "backup", "POST", "/api/v1/apps/"+a.ID+"/backups"
			case r < 70 && len(updatable) > 0 && (r >= 58 || rng.IntN(3) == 0):
				// An update to what the catalog offers; one in four names
				// the version it expects.
				a = updatable[rng.IntN(len(updatable))]
				op, method, path = "update", "POST", "/api/v1/apps/"+a.ID+"/update"
				wl.mu.Lock()
				wl.updateSent[a.ID] = time.Now()
				wl.mu.Unlock()
				if rng.IntN(4) == 0 {
					body = map[string]any{"version": *a.UpdateAvailable}
				}
			case r < 58:
				// Not a backup made before the app's last update: a
				// restore does not take the backup's version back (see
				// docs/reliability.md, "Open").
				bs, err := listAll[backupOut](w, tok, "/api/v1/apps/"+a.ID+"/backups")
				wl.mu.Lock()
				since := wl.updateSent[a.ID]
				wl.mu.Unlock()
				var ready []backupOut
				for _, b := range bs {
					if b.Status == "ready" && b.Reason != "pre-update" && b.CreatedAt.After(since) {
						ready = append(ready, b)
					}
				}
				if err != nil || len(ready) == 0 {
					op, method, path = "backup", "POST", "/api/v1/apps/"+a.ID+"/backups"
					break
				}
				op, method, path = "restore", "POST", "/api/v1/apps/"+a.ID+"/backups/"+ready[rng.IntN(len(ready))].ID+"/restore"
			case r < 80:
				action := "stop"
				if a.Status == "stopped" {
					action = "start"
				}
				op, method, path, body = action, "POST", "/api/v1/apps/"+a.ID+"/actions", map[string]any{"action": action}
			default:
				op, method, path = "delete", "DELETE", "/api/v1/apps/"+a.ID
			}
			if op != "clone" && op != "backup" && op != "restore" && op != "update" && op != "stop" && op != "start" && op != "delete" {
				continue
			}
			func() {
				wl.mu.Lock()
				defer wl.mu.Unlock()
				if op == "delete" {
					wl.deleted[a.ID] = true // marked before: an unknown outcome may still delete
				}
			}()
		}
		st, raw := w.call(tok, method, path, body, key, 30*time.Second)
		switch {
		case st >= 200 && st < 300:
			wl.ops.add("accepted/" + op)
			var out struct {
				ID     string `json:"id"`
				AppID  string `json:"app_id"`
				Status string `json:"status"`
			}
			_ = json.Unmarshal(raw, &out)
			wl.mu.Lock()
			switch op {
			case "deploy", "clone":
				if out.ID != "" {
					wl.created[out.ID] = op
				}
			case "backup":
				if out.ID != "" {
					wl.backups[out.ID] = out.AppID
				}
			case "delete":
				wl.gone[strings.TrimPrefix(path, "/api/v1/apps/")] = true
			}
			wl.mu.Unlock()
		case st == 409:
			wl.ops.add("busy/" + op)
		case st == 0 || st >= 500:
			wl.ops.add("unanswered/" + op)
			w.logf("user%d %s %s: no answer: %d %s", u, op, path, st, bytes.TrimSpace(raw))
		default:
			wl.ops.add(fmt.Sprintf("refused-%d/%s", st, op))
			w.logf("user%d %s %s: %d %s", u, op, path, st, bytes.TrimSpace(raw))
		}
	}
}

// checkOperations: every accepted operation ended; deleted apps are gone
// (or in error with a reason); every app is running, stopped, or in error
// with a reason; no backup is still being made.
func (w *world) checkOperations(apps []appOut, wl *workload, fail func(string, ...any)) {
	byID := map[string]appOut{}
	for _, a := range apps {
		byID[a.ID] = a
		switch {
		case a.Operation != "":
		case a.Status == "running" || a.Status == "stopped":
		case a.Status == "error" && a.Error != "":
		default:
			fail("app %s (%s): status %q error %q after the operation ended", a.ID, a.Hostname, a.Status, a.Error)
		}
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	for id, op := range wl.created {
		if _, ok := byID[id]; !ok && !wl.deleted[id] {
			fail("app %s made by an accepted %s is gone, and no delete was asked", id, op)
		}
	}
	for _, a := range apps {
		if wl.gone[a.ID] && a.Operation == "" && a.Status != "error" {
			fail("app %s (%s) still %s after its delete was accepted", a.ID, a.Hostname, a.Status)
		}
		bs, err := listAll[backupOut](w, w.token, "/api/v1/apps/"+a.ID+"/backups")
		if err != nil {
			fail("backups of %s: %v", a.ID, err)
			continue
		}
		for _, b := range bs {
			if b.Status == "creating" {
				fail("backup %s of %s still creating", b.ID, a.ID)
			}
			if b.Status == "failed" && b.Error == "" {
				fail("backup %s of %s failed without a reason", b.ID, a.ID)
			}
		}
	}
}

// checkNodes: the registry and every simulated node agree.
func (w *world) checkNodes(apps []appOut, fail func(string, ...any)) {
	type ct struct {
		node, hostname, status, lock string
		snapshots                    int
	}
	cts := map[string]ct{} // "node/vmid"
	for n := 0; n < agents; n++ {
		node := fmt.Sprintf("pve%d", n+1)
		st, err := w.simStore(n)
		if err != nil {
			fail("%s: %v", node, err)
			continue
		}
		_ = st.View(func(s *pvesim.Node) error {
			for vmid, c := range s.CTs {
				cts[fmt.Sprintf("%s/%d", node, vmid)] = ct{node: node, hostname: c.Config["hostname"], status: c.Status, lock: c.Lock, snapshots: len(c.Snapshots)}
			}
			return nil
		})
	}
	vmids, hosts, ports := map[int]string{}, map[string]string{}, map[string]string{}
	appAt := map[string]appOut{}
	for _, a := range apps {
		if a.VMID != 0 {
			if o, dup := vmids[a.VMID]; dup {
				fail("VMID %d held by apps %s and %s", a.VMID, o, a.ID)
			}
			vmids[a.VMID] = a.ID
			appAt[fmt.Sprintf("%s/%d", a.Node, a.VMID)] = a
		}
		if o, dup := hosts[a.Hostname]; dup {
			fail("hostname %s held by apps %s and %s", a.Hostname, o, a.ID)
		}
		hosts[a.Hostname] = a.ID
		for _, p := range a.PublicPorts {
			k := fmt.Sprintf("%s:%d", a.Node, p)
			if o, dup := ports[k]; dup {
				fail("port %s held by apps %s and %s", k, o, a.ID)
			}
			ports[k] = a.ID
		}
		if a.Status == "running" || a.Status == "stopped" {
			c, ok := cts[fmt.Sprintf("%s/%d", a.Node, a.VMID)]
			switch {
			case !ok:
				fail("app %s (%s) is %s on %s as VMID %d, and the node has no such container", a.ID, a.Hostname, a.Status, a.Node, a.VMID)
			case c.hostname != a.Hostname:
				fail("app %s: container %s/%d has hostname %q, the registry %q", a.ID, a.Node, a.VMID, c.hostname, a.Hostname)
			case c.status != a.Status:
				fail("app %s (%s) is %s in the registry, its container %s/%d is %s", a.ID, a.Hostname, a.Status, a.Node, a.VMID, c.status)
			case c.lock != "":
				fail("app %s: container %s/%d keeps the lock %q", a.ID, a.Node, a.VMID, c.lock)
			case c.snapshots > 0:
				fail("app %s: container %s/%d keeps %d snapshots", a.ID, a.Node, a.VMID, c.snapshots)
			}
		}
	}
	for k, c := range cts {
		if _, ok := appAt[k]; ok {
			continue
		}
		if _, ok := w.taken.Load(k); ok {
			continue
		}
		fail("orphan container %s (hostname %q, %s, lock %q): no app holds it", k, c.hostname, c.status, c.lock)
	}
	res, err := listAll[reservation](w, w.token, "/api/v1/reservations")
	if err != nil {
		fail("reservations: %v", err)
		return
	}
	held := map[string]reservation{}
	for _, r := range res {
		if strings.HasPrefix(r.Hostname, "lin-") {
			continue
		}
		held[r.Hostname] = r
		a, ok := hosts[r.Hostname]
		if !ok {
			fail("orphan reservation %s for %s (VMID %d on %s): no app has the hostname", r.ID, r.Hostname, r.VMID, r.Node)
			continue
		}
		if vmids[r.VMID] != a {
			fail("reservation %s for %s holds VMID %d, the app %s has another", r.ID, r.Hostname, r.VMID, a)
		}
	}
	for _, a := range apps {
		if _, ok := held[a.Hostname]; !ok && (a.Status == "running" || a.Status == "stopped") {
			fail("app %s (%s) is %s with no reservation", a.ID, a.Hostname, a.Status)
		}
	}
}

// checkForwards: each node's port forwards (the nftables ruleset its
// agent last applied) are exactly its running apps' public ports. The
// agent applies a new set after each change and again every 30 s, so the
// check waits up to 45 s for the nodes to agree.
func (w *world) checkForwards(apps []appOut, fail func(string, ...any)) {
	deadline := time.Now().Add(45 * time.Second)
	for {
		var problems []string
		byKey := map[string]appOut{}
		for _, a := range apps {
			byKey[a.ID], byKey[a.Hostname] = a, a
		}
		have := map[string]bool{} // "node:port"
		for n := 0; n < agents; n++ {
			node := fmt.Sprintf("pve%d", n+1)
			st, err := w.simStore(n)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", node, err))
				continue
			}
			var rules string
			_ = st.View(func(s *pvesim.Node) error { rules = s.Ruleset; return nil })
			for _, line := range strings.Split(rules, "\n") {
				f := strings.Fields(line)
				if len(f) < 8 || f[1] != "dport" || f[6] != "comment" {
					continue
				}
				port, _ := strconv.Atoi(f[2])
				who, _ := strconv.Unquote(f[7])
				have[fmt.Sprintf("%s:%d", node, port)] = true
				a, ok := byKey[who]
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("orphan forward on %s: %s port %d for %q, no such app", node, f[0], port, who))
				case a.Node != node || !slices.Contains(a.PublicPorts, port):
					problems = append(problems, fmt.Sprintf("forward on %s of port %d for app %s, which is on %s with ports %v", node, port, a.ID, a.Node, a.PublicPorts))
				}
			}
		}
		for _, a := range apps {
			if a.Status != "running" {
				continue
			}
			for _, p := range a.PublicPorts {
				if !have[fmt.Sprintf("%s:%d", a.Node, p)] {
					problems = append(problems, fmt.Sprintf("app %s (%s) is running on %s without the forward of its port %d", a.ID, a.Hostname, a.Node, p))
				}
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range problems {
				fail("%s", p)
			}
			return
		}
		time.Sleep(time.Second)
	}
}

// checkDigests waits until the three servers report their state digest
// at the same index, and compares them.
func (w *world) checkDigests(fail func(string, ...any)) {
	deadline := time.Now().Add(60 * time.Second)
	var last []clusterInfo
	for time.Now().Before(deadline) {
		infos := make([]clusterInfo, coordinators)
		oks := make([]bool, coordinators)
		var wg sync.WaitGroup
		for i := range infos {
			wg.Add(1)
			go func() { defer wg.Done(); infos[i], oks[i] = w.info(i) }()
		}
		wg.Wait()
		last = infos
		if oks[0] && oks[1] && oks[2] && infos[0].DigestIndex == infos[1].DigestIndex && infos[1].DigestIndex == infos[2].DigestIndex {
			if infos[0].StateDigest == "" || infos[0].StateDigest != infos[1].StateDigest || infos[1].StateDigest != infos[2].StateDigest {
				fail("the servers' states differ at index %d: %s %s %s", infos[0].DigestIndex, infos[0].StateDigest, infos[1].StateDigest, infos[2].StateDigest)
			} else {
				w.logf("identical state digest %.16s at index %d on the three servers", infos[0].StateDigest, infos[0].DigestIndex)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail("the servers never reported their digest at the same index within 60s: %+v", last)
}

// The registry history: reservations, releases and lookups by hostname,
// checked with the model coordinator/server's linearizability test uses.
type (
	regInput  = testutil.RegInput
	regOutput = testutil.RegOutput
)

var registryModel = testutil.RegistryModel

type openOp struct {
	client int
	in     regInput
	call   int64
}

type registryHistory struct {
	w     *world
	start time.Time

	mu         sync.Mutex
	ops        []porcupine.Operation
	seen       map[string]string
	unresolved []openOp
	errors     atomic.Int64
}

func newRegistryHistory(w *world) *registryHistory {
	return &registryHistory{w: w, start: time.Now(), seen: map[string]string{}}
}

func (h *registryHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *registryHistory) record(client int, in regInput, call int64, out regOutput) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: h.now()})
	if out.ID != "" {
		h.seen[in.Host] = out.ID
	}
}

// try makes one attempt through a random server; definite is false when
// the outcome is unknown.
func (h *registryHistory) try(in regInput) (regOutput, bool) {
	w := h.w
	i := rand.IntN(coordinators)
	out, definite, unexpected := testutil.RegistryAttempt(in, func(method, path string, body any, key string) (int, []byte, error) {
		return w.api(i, w.token, method, path, body, key)
	})
	if unexpected != "" {
		h.errors.Add(1)
		w.logf("%s", unexpected)
	}
	return out, definite
}

func (h *registryHistory) client(c int, stop chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(20+rand.IntN(60)) * time.Millisecond):
		}
		in := regInput{Host: fmt.Sprintf("lin-%d", rand.IntN(resHosts)), Rid: fmt.Sprintf("lin-%d-%d-%d", c, n, h.start.UnixNano())}
		switch r := rand.IntN(10); {
		case r < 4:
			in.Op = "reserve"
		case r < 7:
			in.Op = "lookup"
		default:
			in.Op = "release"
			h.mu.Lock()
			in.ID = h.seen[in.Host]
			h.mu.Unlock()
			if in.ID == "" {
				in.Op = "lookup"
			}
		}
		call := h.now()
		var out regOutput
		definite := false
		for attempt := 0; attempt < 10 && !definite; attempt++ {
			if out, definite = h.try(in); !definite {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !definite {
			if in.Op != "lookup" {
				h.mu.Lock()
				h.unresolved = append(h.unresolved, openOp{c, in, call})
				h.mu.Unlock()
			}
			continue
		}
		h.record(c, in, call, out)
	}
}

// resolve asks again, on the healed cluster, every write that got no
// answer: the same request ID answers with what happened.
func (h *registryHistory) resolve() {
	h.mu.Lock()
	open := h.unresolved
	h.unresolved = nil
	h.mu.Unlock()
	for _, o := range open {
		var out regOutput
		definite := false
		for attempt := 0; attempt < 50 && !definite; attempt++ {
			if out, definite = h.try(o.in); !definite {
				time.Sleep(100 * time.Millisecond)
			}
		}
		h.record(o.client, o.in, o.call, out)
	}
	h.w.logf("registry: %d writes resolved after healing", len(open))
}

func (h *registryHistory) kinds() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &counters{}
	for _, op := range h.ops {
		c.add(op.Input.(regInput).Op + "/" + op.Output.(regOutput).Status)
	}
	return c.String()
}

// checkHistory runs porcupine over the reservation history and writes its
// visualization to the artifacts directory.
func (w *world) checkHistory(h *registryHistory, fail func(string, ...any)) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	if len(ops) < 100 {
		fail("only %d registry operations recorded; the history proves little", len(ops))
	}
	if n := h.errors.Load(); n > 0 {
		fail("%d registry requests answered with an unexpected status (see nemesis.log)", n)
	}
	m := registryModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(m, ops, 120*time.Second)
	path := filepath.Join(w.art, "history.html")
	if err := porcupine.VisualizePath(m, info, path); err != nil {
		w.logf("visualize: %v", err)
	}
	switch res {
	case porcupine.Ok:
		w.logf("registry history of %d operations is linearizable", len(ops))
	case porcupine.Illegal:
		fail("the registry history is not linearizable: %s", path)
	default:
		fail("porcupine gave no answer within 120s over %d operations", len(ops))
	}
}
