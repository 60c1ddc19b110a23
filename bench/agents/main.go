// Package main is the agent scale test. It starts one
// proximity-coordinator server and then agent processes on simulated nodes
// (proximity-agent --simulate, each with its own simulated Proxmox API and
// the real adapter), level by level, all on loopback. At each level it
// measures how long the new agents take to join and be ready, then lets the
// cluster idle and reports whether every node stayed ready with a fresh
// heartbeat, the coordinator's CPU and memory while idle, how many Raft log
// entries the idle period wrote, and the agents' memory.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	coord := flag.String("coordinator", "bin/proximity-coordinator", "path to the proximity-coordinator binary")
	agentBin := flag.String("agent", "bin/proximity-agent", "path to a proximity-agent binary built with -tags simulate")
	levels := flag.String("agents", "25,50,100", "comma-separated totals of agents, in increasing order")
	idle := flag.Duration("idle", 20*time.Second, "measured idle time at each level")
	host := flag.String("host", "127.0.0.1", "loopback address to run everything on")
	flag.Parse()

	var totals []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || (len(totals) > 0 && n <= totals[len(totals)-1]) {
			fmt.Fprintf(os.Stderr, "bad -agents %q: increasing positive totals\n", *levels)
			os.Exit(2)
		}
		totals = append(totals, n)
	}
	dir, err := os.MkdirTemp("", "proximity-agents-")
	if err != nil {
		fail(err)
	}
	b := &bench{dir: dir, agentBin: *agentBin}
	defer b.close()
	if err := b.startCoordinator(*coord, *host); err != nil {
		fail(err)
	}
	fmt.Printf("agent scale test: one coordinator, levels %v, %s idle per level; data in %s\n\n", totals, *idle, dir)
	fmt.Printf("%7s %12s %10s %14s %12s %12s %16s %16s\n", "agents", "all ready", "ready", "coord CPU", "coord RSS", "log entries", "agent RSS p50", "agent RSS max")
	for _, n := range totals {
		if err := b.level(n, *idle); err != nil {
			b.close()
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "agent scale test:", err)
	os.Exit(1)
}

type bench struct {
	dir      string
	agentBin string
	cl       *http.Client // HTTPS, trusting the cluster CA
	api      string       // https://host:port
	grpc     string
	token    string
	coord    *exec.Cmd
	agents   []*exec.Cmd
}

func (b *bench) close() {
	for _, p := range append(b.agents, b.coord) {
		if p != nil && p.Process != nil {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
	b.agents, b.coord = nil, nil
	_ = os.RemoveAll(b.dir)
}

func (b *bench) startCoordinator(bin, host string) error {
	var ports []string
	var ls []net.Listener
	for i := 0; i < 4; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	key := filepath.Join(b.dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", "--out", key).CombinedOutput(); err != nil {
		return fmt.Errorf("keygen: %v: %s", err, out)
	}
	data := filepath.Join(b.dir, "coordinator")
	b.coord = exec.Command(bin, "server", "--node-id", "c1", "--data-dir", data, "--cluster-key-file", key,
		"--http-addr", ports[0], "--raft-addr", ports[1], "--gossip-addr", ports[2], "--grpc-addr", ports[3])
	b.coord.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=warn")
	b.coord.Stderr = os.Stderr
	if err := b.coord.Start(); err != nil {
		return err
	}
	b.api, b.grpc = "https://"+ports[0], ports[3]
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if b.token == "" {
			if tok, err := os.ReadFile(filepath.Join(data, "admin.token")); err == nil {
				b.token = strings.TrimSpace(string(tok))
			}
		}
		if b.cl == nil {
			// The server writes the cluster CA's certificate once the CA
			// exists; the API's certificate chains to it.
			if pem, err := os.ReadFile(filepath.Join(data, "ca.pem")); err == nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return errors.New("ca.pem: no certificate")
				}
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.TLSClientConfig = &tls.Config{RootCAs: pool}
				b.cl = &http.Client{Transport: tr, Timeout: 10 * time.Second}
			}
		}
		if b.token == "" || b.cl == nil {
			continue
		}
		// The first join token also waits for the cluster CA.
		if _, err := b.joinToken(); err == nil {
			return nil
		}
	}
	return errors.New("the coordinator did not come up within 60 s")
}

func (b *bench) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// commitIndex is the Raft log's commit index: what it grows by while the
// cluster idles is what heartbeats and inventories cost the log.
func (b *bench) commitIndex() (uint64, error) {
	var out struct {
		CommitIndex uint64 `json:"commit_index"`
	}
	err := b.do("GET", "/api/v1/cluster", nil, &out)
	return out.CommitIndex, err
}

func (b *bench) joinToken() (string, error) {
	var out struct{ Token string }
	err := b.do("POST", "/api/v1/join-tokens", map[string]any{"ttl_seconds": 3600}, &out)
	return out.Token, err
}

type nodeOut struct {
	Name          string     `json:"name"`
	Status        string     `json:"status"`
	LastHeartbeat *time.Time `json:"last_heartbeat"`
}

func (b *bench) nodes() ([]nodeOut, error) {
	var all []nodeOut
	for page := 1; ; page++ {
		var out struct {
			Items []nodeOut
			Total int
		}
		if err := b.do("GET", fmt.Sprintf("/api/v1/nodes?per_page=100&page=%d", page), nil, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Items...)
		if len(out.Items) == 0 || len(all) >= out.Total {
			return all, nil
		}
	}
}

// fresh counts nodes that are ready with a heartbeat newer than since.
func fresh(ns []nodeOut, since time.Time) int {
	n := 0
	for _, x := range ns {
		if x.Status == "ready" && x.LastHeartbeat != nil && x.LastHeartbeat.After(since) {
			n++
		}
	}
	return n
}

func (b *bench) level(total int, idle time.Duration) error {
	start := time.Now()
	for i := len(b.agents); i < total; i++ {
		tok, err := b.joinToken()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("pve%03d", i+1)
		cmd := exec.Command(b.agentBin, "--simulate", "--node", name, "--coordinator", b.grpc,
			"--join-token", tok, "--data-dir", filepath.Join(b.dir, name))
		cmd.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=warn")
		if err := cmd.Start(); err != nil {
			return err
		}
		b.agents = append(b.agents, cmd)
	}
	var ready time.Duration
	for deadline := time.Now().Add(5 * time.Minute); ; {
		ns, err := b.nodes()
		if err == nil && fresh(ns, start) == total {
			ready = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d agents: not all ready within 5 min (%v)", total, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	cpu0, err := cpuTime(b.coord.Process.Pid)
	if err != nil {
		return err
	}
	log0, err := b.commitIndex()
	if err != nil {
		return err
	}
	t0 := time.Now()
	time.Sleep(idle)
	cpu1, err := cpuTime(b.coord.Process.Pid)
	if err != nil {
		return err
	}
	log1, err := b.commitIndex()
	if err != nil {
		return err
	}
	busy := float64(cpu1-cpu0) / float64(time.Since(t0))
	ns, err := b.nodes()
	if err != nil {
		return err
	}
	// Agents heartbeat every few seconds: every node must have beaten in
	// the last 10 s, at the end of the idle period.
	ok := fresh(ns, time.Now().Add(-10*time.Second))
	coordRSS, err := rss(b.coord.Process.Pid)
	if err != nil {
		return err
	}
	var agentRSS []int64
	for _, a := range b.agents {
		r, err := rss(a.Process.Pid)
		if err != nil {
			return err
		}
		agentRSS = append(agentRSS, r)
	}
	sort.Slice(agentRSS, func(i, j int) bool { return agentRSS[i] < agentRSS[j] })
	fmt.Printf("%7d %11.1fs %6d/%-3d %13.1f%% %9.1f MiB %12d %12.1f MiB %12.1f MiB\n", total, ready.Seconds(), ok, total,
		100*busy, mib(coordRSS), log1-log0, mib(agentRSS[len(agentRSS)/2]), mib(agentRSS[len(agentRSS)-1]))
	if ok != total {
		return fmt.Errorf("%d of %d nodes lost their heartbeat while idle", total-ok, total)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rss is a process's resident set size from /proc.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// cpuTime is a process's user and system time from /proc (clock ticks of
// 10 ms, as on every Linux this runs on).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
