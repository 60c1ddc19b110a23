package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	httpAddrs := make([]string, 3)
	for i := 0; i < 3; i++ {
		httpAddrs[i] = addr(i * 4)
		cmd := exec.Command(bin, "server",
			"--node-id", fmt.Sprintf("c%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("c%d", i+1)),
			"--http-addr", addr(i*4), "--raft-addr", addr(i*4+1), "--gossip-addr", addr(i*4+2), "--grpc-addr", addr(i*4+3),
			"--bootstrap-expect", "3", "--join", addr(2))
		cmd.Env = append(os.Environ(), "PROXIMITY_LOG_LEVEL=warn")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	token, leader, err := waitProximity(dir, httpAddrs)
	if err != nil {
		return nil, err
	}
	fmt.Printf("proximity: 3 servers up, leader at %s\n", leader)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
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
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+leader+"/api/v1/reservations", bytes.NewReader(body))
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
	req, _ := http.NewRequest("PUT", "http://"+leader+path, strings.NewReader(body))
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

// waitProximity waits for the admin token and a leader.
func waitProximity(dir string, httpAddrs []string) (token, leader string, err error) {
	deadline := time.Now().Add(60 * time.Second)
	cl := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if token == "" {
			for i := 1; i <= 3; i++ {
				if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i), "admin.token")); err == nil {
					token = strings.TrimSpace(string(b))
				}
			}
			continue
		}
		req, _ := http.NewRequest("GET", "http://"+httpAddrs[0]+"/api/v1/cluster", nil)
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
			return token, in.Leader.HTTPAddr, nil
		}
	}
	return "", "", fmt.Errorf("cluster not ready within 60s")
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
