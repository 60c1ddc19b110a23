package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
)

// TestAppOpenPrintsTheMainURL: `app open NAME` prints the app's main URL,
// its node's advertised address and its public port; --browser hands it
// to the opener; -o json prints the URL as the API shows it.
func TestAppOpenPrintsTheMainURL(t *testing.T) {
	ts, token := startServer(t)
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
	defer sim.Close()
	a, err := agent.New(agent.Config{Node: "pve1", Coordinators: []string{ts.srv.GRPCAddr()}, JoinToken: tok.Token, DataDir: filepath.Join(dir, "agent"),
		Runtime: sim.Runtime, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AdvertiseAddr: "pve1.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, out, _ := ctl(t, ts, token, "nodes", "-o", "json")
		if strings.Contains(out, `"pve1.example.net"`) && strings.Contains(out, `"ready"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready with its address: %s", out)
		}
	}
	var app struct {
		PublicPorts []int `json:"public_ports"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "-o", "json")
		if code == 0 && json.Unmarshal([]byte(out), &app) == nil && len(app.PublicPorts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploy: %d %s %s", code, out, errs)
		}
	}
	want := "http://pve1.example.net:" + strconv.Itoa(app.PublicPorts[0])
	if code, out, errs := ctl(t, ts, token, "app", "open", "vault"); code != 0 || out != want+"\n" {
		t.Fatalf("app open: %d %q %s (want %q)", code, out, errs, want)
	}
	var u appURL
	if code, out, _ := ctl(t, ts, token, "app", "open", "vault", "-o", "json"); code != 0 || json.Unmarshal([]byte(out), &u) != nil || u.URL != want || !u.Main {
		t.Fatalf("app open -o json: %d %s", code, out)
	}

	opened := ""
	defer func(orig func(context.Context, string) error) { openInBrowser = orig }(openInBrowser)
	openInBrowser = func(ctx context.Context, u string) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("the opener has no deadline")
		}
		opened = u
		return nil
	}
	if code, out, errs := ctl(t, ts, token, "app", "open", "vault", "--browser"); code != 0 || out != want+"\n" || opened != want {
		t.Fatalf("app open --browser: %d %q %s; opened %q", code, out, errs, opened)
	}
	openInBrowser = func(context.Context, string) error { return errors.New("xdg-open: no display") }
	if code, _, errs := ctl(t, ts, token, "app", "open", "vault", "--browser"); code == 0 || !strings.Contains(errs, "no display") {
		t.Fatalf("a failing opener: %d %s", code, errs)
	}
}
