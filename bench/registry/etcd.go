package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func runEtcd(bin, host, dir string, conc []int, dur, warm time.Duration) ([]result, error) {
	ports, err := freePorts(host, 6)
	if err != nil {
		return nil, err
	}
	url := func(p int) string { return "http://" + net.JoinHostPort(host, strconv.Itoa(p)) }
	var initial []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, url(ports[i*2+1])))
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	var clientURLs []string
	for i := 0; i < 3; i++ {
		cu, pu := url(ports[i*2]), url(ports[i*2+1])
		clientURLs = append(clientURLs, cu)
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("e%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i+1)),
			"--listen-client-urls", cu, "--advertise-client-urls", cu,
			"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "proximity-bench", "--log-level", "error")
		cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start etcd: %w", err)
		}
		procs = append(procs, cmd)
	}
	leader, err := etcdLeader(clientURLs)
	if err != nil {
		return nil, err
	}
	fmt.Printf("etcd: 3 members up, leader at %s\n", leader)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var next atomic.Int64
	var out []result
	for _, c := range conc {
		r := drive(c, warm, dur, &next, func(ctx context.Context, n int64) error {
			vmid := fmt.Sprintf("/vmid/%d", 10000+n)
			hostKey := fmt.Sprintf("/host/h%d", n)
			port := fmt.Sprintf("/port/pve%d/%d", n%1024, 1024+n/1024)
			resp, err := cli.Txn(ctx).If(
				clientv3.Compare(clientv3.CreateRevision(vmid), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(hostKey), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(port), "=", 0),
			).Then(
				clientv3.OpPut(vmid, hostKey), clientv3.OpPut(hostKey, vmid), clientv3.OpPut(port, vmid),
			).Commit()
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return fmt.Errorf("conflict")
			}
			return nil
		})
		fmt.Printf("etcd      %4d clients: %8.0f/s  p50 %6.2fms  p99 %6.2fms  errors %d\n", c, r.rate(), ms(r.p(50)), ms(r.p(99)), r.errors)
		out = append(out, r)
	}
	return out, nil
}

// etcdLeader waits for the members to elect a leader and returns its
// client URL.
func etcdLeader(urls []string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		for _, u := range urls {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: time.Second})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, u)
			cancel()
			cli.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return u, nil
			}
		}
	}
	return "", fmt.Errorf("no etcd leader within 60s")
}
