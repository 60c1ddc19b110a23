package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// The test binary doubles as pct, vzdump and pveam for the simulated node.
func TestMain(m *testing.M) {
	pvesim.RunAsTool()
	os.Exit(m.Run())
}

// TestAppCommandLineEndToEnd deploys, stops, starts and deletes an app
// through proximityctl against a server with an agent on a simulated node,
// checking the node after each step.
func TestAppCommandLineEndToEnd(t *testing.T) {
	ts, token := startServer(t)
	var tok struct{ Token string }
	deadline := time.Now().Add(10 * time.Second)
	for {
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
	defer sim.Close()
	a, err := agent.New(agent.Config{Node: "pve1", Coordinators: []string{ts.srv.GRPCAddr()}, JoinToken: tok.Token, DataDir: filepath.Join(dir, "agent"),
		Runtime: sim.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, out, _ := ctl(t, ts, token, "nodes")
		if strings.Contains(out, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--wait")
	if code != 0 || !strings.Contains(out, "health: started") || !strings.HasSuffix(out, "is running\n") {
		t.Fatalf("deploy --wait: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = ctl(t, ts, token, "app", "list", "-o", "json")
	var list struct{ Items []app }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 {
		t.Fatalf("list: %d %s", code, out)
	}
	id, vmid := list.Items[0].ID, list.Items[0].VMID
	status := func() string {
		s := ""
		_ = sim.Store.View(func(n *pvesim.Node) error {
			if c := n.CTs[vmid]; c != nil {
				s = c.Status
			}
			return nil
		})
		return s
	}
	if status() != "running" {
		t.Fatalf("container after deploy: %q", status())
	}
	for _, step := range []struct{ verb, want, ct string }{{"stop", "is stopped", "stopped"}, {"start", "is running", "running"}, {"restart", "is running", "running"}} {
		if code, out, errs := ctl(t, ts, token, "app", step.verb, id, "--wait"); code != 0 || !strings.Contains(out, step.want) || status() != step.ct {
			t.Fatalf("%s: %d %s %s (container %q)", step.verb, code, out, errs, status())
		}
	}
	if code, out, errs := ctl(t, ts, token, "backup", "create", id); code != 0 || !strings.Contains(out, "creating") {
		t.Fatalf("backup create: %d %s %s", code, out, errs)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, out, _ := ctl(t, ts, token, "backup", "list", id)
		if strings.Contains(out, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup not ready: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	archives := func() int {
		n := 0
		_ = sim.Store.View(func(nd *pvesim.Node) error { n = len(nd.Backups); return nil })
		return n
	}
	if archives() != 1 {
		t.Fatalf("archives on the node after backup: %d", archives())
	}
	_, out, _ = ctl(t, ts, token, "backup", "list", id, "-o", "json")
	var bl struct{ Items []backup }
	if json.Unmarshal([]byte(out), &bl) != nil || len(bl.Items) != 1 {
		t.Fatalf("backup list: %s", out)
	}
	if code, out, errs := ctl(t, ts, token, "backup", "restore", id, bl.Items[0].ID); code != 0 || !strings.Contains(out, "restoring") {
		t.Fatalf("backup restore: %d %s %s", code, out, errs)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, out, _ := ctl(t, ts, token, "app", "show", id)
		if strings.Contains(out, "running") && !strings.Contains(out, "(") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore did not end: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	offerVersion(t, ts, "vaultwarden", "99.0.0")
	if code, out, errs := ctl(t, ts, token, "app", "update", id, "--wait"); code != 0 || !strings.Contains(out, "pull: started") || !strings.HasSuffix(out, "is running\n") {
		t.Fatalf("update --wait: %d %s %s", code, out, errs)
	}
	if archives() != 2 || status() != "running" {
		t.Fatalf("after update: %d archives, container %q", archives(), status())
	}
	if code, out, errs := ctl(t, ts, token, "app", "clone", id, "vault2", "--wait"); code != 0 || !strings.HasSuffix(out, "is running\n") {
		t.Fatalf("clone --wait: %d %s %s", code, out, errs)
	}
	running := 0
	_ = sim.Store.View(func(nd *pvesim.Node) error {
		for _, c := range nd.CTs {
			if c.Status == "running" && (c.Config["hostname"] == "vault2" || c.Config["hostname"] == "vault") {
				running++
			}
		}
		return nil
	})
	if running != 2 {
		t.Fatalf("containers after clone: %d running", running)
	}
	if code, out, _ := ctl(t, ts, token, "app", "logs", id, "--limit", "3"); code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 4 {
		t.Fatalf("logs: %d\n%s", code, out)
	}
	if code, out, errs := ctl(t, ts, token, "app", "delete", id, "--wait"); code != 0 || !strings.HasSuffix(out, "is deleted\n") {
		t.Fatalf("delete --wait: %d %s %s", code, out, errs)
	}
	if status() != "" {
		t.Fatalf("container after delete: %q", status())
	}
	if code, out, errs := ctl(t, ts, token, "settings", "set-resources", "--swap-mb", "256"); code != 0 || !strings.Contains(out, "256") {
		t.Fatalf("settings set-resources: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "catalog", "list"); code != 0 || !strings.Contains(out, "vaultwarden") {
		t.Fatalf("catalog list: %d %s", code, out)
	}
}
