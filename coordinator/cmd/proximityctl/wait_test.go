package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// startWithNode is startServer with one agent on a simulated node that is
// ready.
func startWithNode(t *testing.T) (testServer, string, *simnode.Node) {
	t.Helper()
	ts, token := startServer(t)
	var tok struct{ Token string }
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, out, _ := ctl(t, ts, token, "join-tokens", "create", "-o", "json")
		if code == 0 && json.Unmarshal([]byte(out), &tok) == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	dir := t.TempDir()
	sim, err := simnode.Start(dir, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Node: "pve1", Coordinators: []string{ts.srv.GRPCAddr()}, JoinToken: tok.Token, DataDir: filepath.Join(dir, "agent"),
		Runtime: sim.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sim.Close() })
	for deadline := time.Now().Add(15 * time.Second); ; {
		// Ready, and its capacity reported: placement needs it.
		_, out, _ := ctl(t, ts, token, "nodes", "-o", "json")
		var nodes struct {
			Items []struct {
				Status   string
				Capacity struct {
					MemTotal uint64 `json:"mem_total"`
				}
			}
		}
		if json.Unmarshal([]byte(out), &nodes) == nil && len(nodes.Items) == 1 && nodes.Items[0].Status == "ready" && nodes.Items[0].Capacity.MemTotal > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ts, token, sim
}

// apiLog is an app's deployment log as the API has it.
func apiLog(t *testing.T, ts testServer, token, id string) []logLine {
	t.Helper()
	code, out, errs := ctl(t, ts, token, "app", "logs", id, "--limit", "1000", "-o", "json")
	var l struct{ Items []logLine }
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("logs: %d %s %s", code, out, errs)
	}
	return l.Items
}

// TestWaitPrintsEachLogLineOnce: --wait follows the operation on the
// events stream and prints every line of the log exactly once, and, for
// an operation on an existing app, none of the lines from before it.
func TestWaitPrintsEachLogLineOnce(t *testing.T) {
	ts, token, _ := startWithNode(t)
	code, out, errs := ctl(t, ts, token, "app", "deploy", "homepage", "home", "--wait", "--timeout", "2m")
	if code != 0 || !strings.HasSuffix(out, "is running\n") {
		t.Fatalf("deploy --wait: %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(errs, "polling") {
		t.Fatalf("--wait did not use the events stream: %s", errs)
	}
	_, list, _ := ctl(t, ts, token, "app", "list", "-o", "json")
	var apps struct{ Items []app }
	if json.Unmarshal([]byte(list), &apps) != nil || len(apps.Items) != 1 {
		t.Fatalf("list: %s", list)
	}
	id := apps.Items[0].ID
	once := func(out string, lines []logLine) {
		t.Helper()
		for _, l := range lines {
			want := fmt.Sprintf("%s  %s\n", l.At.Local().Format("15:04:05"), l.Msg)
			if n := strings.Count(out, want); n != 1 {
				t.Fatalf("%q printed %d times:\n%s", want, n, out)
			}
		}
	}
	before := apiLog(t, ts, token, id)
	once(out, before)

	code, out, errs = ctl(t, ts, token, "app", "stop", id, "--wait", "--timeout", "2m")
	if code != 0 || !strings.HasSuffix(out, "is stopped\n") {
		t.Fatalf("stop --wait: %d\n%s\n%s", code, out, errs)
	}
	after := apiLog(t, ts, token, id)
	if len(after) <= len(before) {
		t.Fatalf("stop added nothing to the log: %v", after)
	}
	once(out, after[len(before):])
	for _, l := range before {
		if strings.Contains(out, "  "+l.Msg+"\n") {
			t.Fatalf("stop --wait replayed %q from before the stop:\n%s", l.Msg, out)
		}
	}
}

// TestWaitExitsNonZeroOnError: a deploy whose every task fails ends in
// error; deploy --wait says so and exits 1.
func TestWaitExitsNonZeroOnError(t *testing.T) {
	ts, token, sim := startWithNode(t)
	if err := sim.Store.SetFaults(pvesim.Faults{Fail: []string{"vzcreate"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := ctl(t, ts, token, "app", "deploy", "homepage", "doomed", "--wait", "--timeout", "3m")
	if code != 1 || !strings.Contains(errs, "ended in error") || !strings.Contains(out, "is error\n") {
		t.Fatalf("deploy --wait of a failing deploy: %d\n%s\n%s", code, out, errs)
	}
}

// TestWaitExitsNonZeroOnTimeout: a deploy stuck in a create that never
// ends; deploy --wait gives up at --timeout, says that it timed out and
// that the operation goes on, and exits 1. Then cancel --wait ends the
// deploy in error, nothing reserved.
func TestWaitExitsNonZeroOnTimeout(t *testing.T) {
	ts, token, sim := startWithNode(t)
	if err := sim.Store.SetFaults(pvesim.Faults{Hang: []string{"vzcreate"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := ctl(t, ts, token, "app", "deploy", "homepage", "stuck", "--wait", "--timeout", "3s")
	if code != 1 || !strings.Contains(errs, "timed out after 3s (--timeout)") || !strings.Contains(errs, "deploying (create)") {
		t.Fatalf("deploy --wait of a hung create: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = ctl(t, ts, token, "app", "cancel", "stuck", "--wait", "--timeout", "2m")
	if code != 1 || !strings.Contains(out, "deploy cancelled by admin") || !strings.Contains(out, "cleanup: the container is removed") {
		t.Fatalf("cancel --wait: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "reservations", "list", "-o", "json"); code != 0 || strings.Contains(out, "stuck") {
		t.Fatalf("reservations after the cancel: %d %s", code, out)
	}
}
