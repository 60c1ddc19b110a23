package main

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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessesKillNineLeader runs three real proximity-coordinator
// processes with --bootstrap-expect 3 sharing one key from `keygen`,
// reserves through each over HTTPS verified with ca.pem, kills the
// leader with SIGKILL, keeps reserving, restarts it from its data
// directory, and checks that every acknowledged reservation is there once.
func TestProcessesKillNineLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	bin := filepath.Join(t.TempDir(), "proximity-coordinator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	host := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", "--out", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 600", st.Mode(), err)
	}
	if out, err := exec.Command(bin, "keygen", "--out", keyFile).CombinedOutput(); err == nil {
		t.Fatalf("keygen overwrote a key file: %s", out)
	}
	addr := func(i, off int) string { return net.JoinHostPort(host, strconv.Itoa(7400+i*4+off)) }
	procs := make([]*exec.Cmd, 3)
	start := func(i int) {
		cmd := exec.Command(bin, "server", "--node-id", fmt.Sprintf("c%d", i+1),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("c%d", i+1)),
			"--http-addr", addr(i, 0), "--raft-addr", addr(i, 1), "--gossip-addr", addr(i, 2), "--grpc-addr", addr(i, 3),
			"--bootstrap-expect", "3", "--join", addr(0, 2), "--cluster-key-file", keyFile)
		cmd.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=error")
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
	}
	for i := range procs {
		start(i)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil && p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	})
	var token string
	var caPEM []byte
	deadline := time.Now().Add(60 * time.Second)
	for (token == "" || caPEM == nil) && time.Now().Before(deadline) {
		for i := 1; i <= 3; i++ {
			if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "admin.token")); err == nil {
				token = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "ca.pem")); err == nil {
				caPEM = b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if token == "" || caPEM == nil {
		t.Fatal("no admin token and ca.pem within 60s")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(i int, method, path string, body any, out any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "https://"+addr(i, 0)+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode, nil
	}
	type res struct {
		ID       string `json:"id"`
		VMID     int    `json:"vmid"`
		Hostname string `json:"hostname"`
	}
	acked := map[string]res{}
	reserve := func(n int, skip int) {
		t.Helper()
		body := map[string]any{"request_id": fmt.Sprintf("p-%d", n), "hostname": fmt.Sprintf("proc-%d", n), "node": "pve1"}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			i := rand.IntN(3)
			if i == skip {
				continue
			}
			var r res
			if st, err := do(i, "POST", "/api/v1/reservations", body, &r); err == nil && (st == 201 || st == 200) {
				acked[r.Hostname] = r
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("reservation %d not acknowledged within 30s", n)
	}
	for n := 0; n < 30; n++ {
		reserve(n, -1)
	}
	var info struct {
		Leader struct {
			ID string `json:"id"`
		} `json:"leader"`
	}
	if st, err := do(0, "GET", "/api/v1/cluster", nil, &info); err != nil || st != 200 || info.Leader.ID == "" {
		t.Fatalf("cluster: %d %v", st, err)
	}
	l, _ := strconv.Atoi(strings.TrimPrefix(info.Leader.ID, "c"))
	l--
	if err := procs[l].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[l].Wait()
	for n := 30; n < 60; n++ {
		reserve(n, l)
	}
	start(l)
	for n := 60; n < 90; n++ {
		reserve(n, -1)
	}
	// Every server, the restarted one included, lists exactly what was
	// acknowledged.
	for i := 0; i < 3; i++ {
		var page struct {
			Items []res `json:"items"`
			Total int   `json:"total"`
		}
		st, err := do(i, "GET", "/api/v1/reservations?per_page=100", nil, &page)
		if err != nil || st != 200 || page.Total != len(acked) || len(page.Items) != len(acked) {
			t.Fatalf("server %d lists %d (status %d, %v), %d acknowledged", i, page.Total, st, err, len(acked))
		}
		vmids := map[int]bool{}
		for _, r := range page.Items {
			if a := acked[r.Hostname]; a.ID != r.ID || a.VMID != r.VMID || vmids[r.VMID] {
				t.Fatalf("server %d: %+v, acknowledged %+v", i, r, a)
			}
			vmids[r.VMID] = true
		}
	}
}
