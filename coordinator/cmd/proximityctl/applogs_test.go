package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// startNode joins an agent on a simulated node to the server and waits
// until the node is ready.
func startNode(t *testing.T, ts testServer, token string) *simnode.Node {
	t.Helper()
	var tok struct{ Token string }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, out, _ := ctl(t, ts, token, "join-tokens", "create", "-o", "json")
		if code == 0 && json.Unmarshal([]byte(out), &tok) == nil || time.Now().After(deadline) {
			break
		}
	}
	dir := t.TempDir()
	sim, err := simnode.Start(dir, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	a, err := agent.New(agent.Config{Node: "pve1", Coordinators: []string{ts.srv.GRPCAddr()}, JoinToken: tok.Token, DataDir: filepath.Join(dir, "agent"),
		Runtime: sim.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, out, _ := ctl(t, ts, token, "nodes"); strings.Contains(out, "ready") {
			return sim
		}
		if time.Now().After(deadline) {
			t.Fatal("node not ready")
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAppSecretsAndOwnLogsCommandLine: app secrets shows the generated
// admin token that is in the container, as a table and as the API's JSON;
// app logs --app shows the app's own output bounded by --limit, refuses
// bad flags, and -f follows it until the app stops.
func TestAppSecretsAndOwnLogsCommandLine(t *testing.T) {
	ts, token := startServer(t)
	sim := startNode(t, ts, token)
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--wait"); code != 0 {
		t.Fatalf("deploy --wait: %d\n%s\n%s", code, out, errs)
	}
	var secret string
	_ = sim.Store.View(func(n *pvesim.Node) error {
		for _, c := range n.CTs {
			vars, _ := dotenv.Parse([]byte(c.Files["/opt/proximity/app/.env"]))
			secret = vars["ADMIN_TOKEN"]
		}
		return nil
	})
	if len(secret) < 16 {
		t.Fatalf("no generated ADMIN_TOKEN in the container: %q", secret)
	}

	code, out, errs := ctl(t, ts, token, "app", "secrets", "vault")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || strings.Fields(lines[0])[0] != "NAME" || strings.Join(strings.Fields(lines[1]), " ") != "ADMIN_TOKEN "+secret {
		t.Fatalf("app secrets: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = ctl(t, ts, token, "app", "secrets", "vault", "-o", "json")
	var js map[string][]map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js["items"]) != 1 || js["items"][0]["name"] != "ADMIN_TOKEN" || js["items"][0]["value"] != secret {
		t.Fatalf("app secrets -o json: %d\n%s", code, out)
	}

	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, out, errs = ctl(t, ts, token, "app", "logs", "vault", "--app", "--limit", "2")
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if code == 0 && len(lines) == 3 || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "app-vaultwarden-1") {
		t.Fatalf("app logs --app --limit 2: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ = ctl(t, ts, token, "app", "logs", "vault", "--limit", "2"); code != 0 || strings.Contains(out, "app-vaultwarden-1") || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		t.Fatalf("the deployment log stays the default: %d\n%s", code, out)
	}
	if code, _, errs = ctl(t, ts, token, "app", "logs", "vault", "--app", "--limit", "0"); code != 1 || !strings.Contains(errs, "limit") {
		t.Fatalf("--limit 0: %d %s", code, errs)
	}
	if code, _, errs = ctl(t, ts, token, "app", "logs", "vault", "--app", "--since", "yesterday"); code != 1 || !strings.Contains(errs, "since") {
		t.Fatalf("--since yesterday: %d %s", code, errs)
	}
	if code, _, errs = ctl(t, ts, token, "app", "logs", "vault", "-f"); code != 2 || !strings.Contains(errs, "--follow needs --app") {
		t.Fatalf("-f without --app: %d %s", code, errs)
	}

	// -f prints lines as they come and ends when the app stops.
	var fout, ferr syncBuffer
	done := make(chan int, 1)
	env := map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_TOKEN": token, "PROXIMITY_CACERT": ts.caCert}
	go func() {
		done <- run([]string{"app", "logs", "vault", "--app", "-f", "--limit", "1"}, &fout, &ferr, func(k string) string { return env[k] })
	}()
	for deadline := time.Now().Add(20 * time.Second); strings.Count(fout.String(), "app-vaultwarden-1") < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("app logs -f printed no new line:\n%s\n%s", fout.String(), ferr.String())
		}
	}
	if code, out, errs := ctl(t, ts, token, "app", "stop", "vault", "--wait"); code != 0 {
		t.Fatalf("stop: %d %s %s", code, out, errs)
	}
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(ferr.String(), "end of the log") {
			t.Fatalf("app logs -f ended with %d:\n%s\n%s", code, fout.String(), ferr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("app logs -f went on after the app stopped")
	}
}
