package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func runProximity(bin, host, dir string, conc []int, dur, warm time.Duration) ([]result, error) {
	ports, err := freePorts(host, 12)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return net.JoinHostPort(host, strconv.Itoa(ports[i])) }
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	// Every server of the cluster shares one cluster key.
	key := filepath.Join(dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", "--out", key).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("keygen: %v: %s", err, out)
	}
	httpAddrs := make([]string, 3)
	for i := 0; i < 3; i++ {
		httpAddrs[i] = addr(i * 4)
		cmd := exec.Command(bin, "server",
			"--node-id", fmt.Sprintf("c%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("c%d", i+1)),
			"--cluster-key-file", key,
			"--http-addr", addr(i*4), "--raft-addr", addr(i*4+1), "--gossip-addr", addr(i*4+2), "--grpc-addr", addr(i*4+3),
			"--bootstrap-expect", "3", "--join", addr(2))
		cmd.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=warn")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	token, tlsConf, leader, err := waitProximity(dir, httpAddrs)
	if err != nil {
		return nil, err
	}
	fmt.Printf("proximity: 3 servers up, leader at %s\n", leader)
	// One kept-alive HTTP/1.1 connection per client, as before HTTPS: a
	// Transport with its own TLS config does not attempt HTTP/2.
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0, TLSClientConfig: tlsConf}}
	// The default pools (90,000 VMIDs, 1,000 ports a node) would run out
	// during a long run; widen them as an operator would.
	if err := put(cl, leader, token, "/api/v1/settings/registry",
		`{"vmid_min":100,"vmid_max":999999999,"port_min":1024,"port_max":65535}`); err != nil {
		return nil, err
	}
	var next atomic.Int64
	var out []result
	for _, c := range conc {
		r := drive(c, warm, dur, &next, func(ctx context.Context, n int64) error {
			body, _ := json.Marshal(map[string]any{
				"hostname": fmt.Sprintf("h%d", n), "node": fmt.Sprintf("pve%d", n%1024), "public_ports": 1,
			})
			req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+leader+"/api/v1/reservations", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
		fmt.Printf("proximity %4d clients: %8.0f/s  p50 %6.2fms  p99 %6.2fms  errors %d\n", c, r.rate(), ms(r.p(50)), ms(r.p(99)), r.errors)
		out = append(out, r)
	}
	return out, nil
}

func put(cl *http.Client, leader, token, path, body string) error {
	req, _ := http.NewRequest("PUT", "https://"+leader+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// waitProximity waits for the admin token (written by the server that
// bootstrapped the cluster), the cluster CA's certificate (every server
// writes it to <data-dir>/ca.pem once the CA exists) and a leader. It
// returns the TLS config that verifies the API with that CA.
func waitProximity(dir string, httpAddrs []string) (token string, tlsConf *tls.Config, leader string, err error) {
	deadline := time.Now().Add(60 * time.Second)
	var cl *http.Client
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if token == "" {
			for i := 1; i <= 3; i++ {
				if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "admin.token")); err == nil {
					token = strings.TrimSpace(string(b))
				}
			}
		}
		if tlsConf == nil {
			// The first server's: it is the one asked below.
			if b, err := os.ReadFile(filepath.Join(dir, "c1", "ca.pem")); err == nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(b) {
					return "", nil, "", errors.New("c1/ca.pem: no certificate")
				}
				tlsConf = &tls.Config{RootCAs: pool}
				cl = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
			}
		}
		if token == "" || tlsConf == nil {
			continue
		}
		req, _ := http.NewRequest("GET", "https://"+httpAddrs[0]+"/api/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			continue
		}
		var in struct {
			Leader struct {
				HTTPAddr string `json:"http_addr"`
			} `json:"leader"`
			Members []struct{} `json:"members"`
		}
		err = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if err == nil && in.Leader.HTTPAddr != "" && len(in.Members) == 3 {
			cl.CloseIdleConnections()
			return token, tlsConf, in.Leader.HTTPAddr, nil
		}
	}
	return "", nil, "", fmt.Errorf("cluster not ready within 60s")
}

func freePorts(host string, n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
