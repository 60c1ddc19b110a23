package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/testutil"
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
	bin := buildThis(t)
	s := newServers(t, bin)
	if st, err := os.Stat(s.keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 600", st.Mode(), err)
	}
	if out, err := exec.Command(bin, "keygen", "--out", s.keyFile).CombinedOutput(); err == nil {
		t.Fatalf("keygen overwrote a key file: %s", out)
	}
	s.start(bin, 20*time.Second)
	acked := map[string]res{}
	reserve := func(n int, skip int) {
		t.Helper()
		body := map[string]any{"request_id": fmt.Sprintf("p-%d", n), "hostname": fmt.Sprintf("proc-%d", n), "node": "pve1"}
		testutil.Until(t, 30*time.Second, fmt.Sprintf("reservation %d acknowledged", n), func() error {
			i := rand.IntN(3)
			for i == skip {
				i = rand.IntN(3)
			}
			var r res
			st, err := s.do(i, "POST", "/api/v1/reservations", body, &r)
			if err != nil || (st != 201 && st != 200) {
				return fmt.Errorf("c%d: %d %v", i+1, st, err)
			}
			acked[r.Hostname] = r
			return nil
		})
	}
	for n := 0; n < 30; n++ {
		reserve(n, -1)
	}
	var info clusterInfo
	if st, err := s.do(0, "GET", "/api/v1/cluster", nil, &info); err != nil || st != 200 || info.leader() < 0 {
		t.Fatalf("cluster: %d %v %+v", st, err, info)
	}
	l := info.leader()
	s.kill(l)
	for n := 30; n < 60; n++ {
		reserve(n, l)
	}
	s.launch(l, bin)
	for n := 60; n < 90; n++ {
		reserve(n, -1)
	}
	// Every server, the restarted one included, lists exactly what was
	// acknowledged.
	for i := 0; i < 3; i++ {
		seen := s.list(i)
		if len(seen) != len(acked) {
			t.Fatalf("server %d lists %d, %d acknowledged", i, len(seen), len(acked))
		}
		for h, r := range seen {
			if a := acked[h]; a.ID != r.ID || a.VMID != r.VMID {
				t.Fatalf("server %d: %+v, acknowledged %+v", i, r, a)
			}
		}
	}
}

// TestRaftSnapshotSettingsBelowTheirMinimumAreRefused: the --raft-*
// settings are refused below 16 entries or one second, before anything
// starts.
func TestRaftSnapshotSettingsBelowTheirMinimumAreRefused(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--node-id", "c1", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--cluster-key-file", filepath.Join(dir, "none")}
	for _, c := range []struct{ flag, value, want string }{
		{"--raft-snapshot-threshold", "15", "--raft-snapshot-threshold: 15 is under 16"},
		{"--raft-trailing-logs", "0", "--raft-trailing-logs: 0 is under 16"},
		{"--raft-snapshot-interval", "500ms", "--raft-snapshot-interval: 500ms is under 1s"},
	} {
		cmd := serverCmd()
		cmd.SetArgs(append(append([]string{}, base...), c.flag, c.value))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want an error naming %q", c.flag, c.value, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused server wrote to its data directory: %v", entries)
	}
}
