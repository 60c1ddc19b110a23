package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
)

type urlOut struct {
	Name, URL string
	Main      bool
}

// TestDeployedAppJSONHasItsURLs: the node record carries the address its
// agent reaches the coordinator from (or its --advertise-addr), and a
// deployed app's JSON carries one URL per catalog port with a scheme, at
// that address and the app's public port, the health check's port main.
func TestDeployedAppJSONHasItsURLs(t *testing.T) {
	tc, _, tok := appCluster(t)
	var nodes struct {
		Items []struct{ Name, Address string }
	}
	waitFor(t, "pve1's address", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/nodes", tok["admin"], nil, nil, &nodes)
		return len(nodes.Items) == 1 && nodes.Items[0].Address != ""
	})
	// The agent connects over loopback: its address is the loopback one.
	addr := nodes.Items[0].Address
	if addr[:4] != "127." {
		t.Fatalf("pve1's address: %q", addr)
	}
	var a struct {
		appOut
		URLs []urlOut
	}
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "pihole", "hostname": "pihole"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	// Pi-hole has an HTTP port and a DNS port: only the first has a URL.
	want := []urlOut{{Name: "http", URL: fmt.Sprintf("http://%s:%d", addr, a.PublicPorts[0]), Main: true}}
	if d := cmp.Diff(want, a.URLs); d != "" {
		t.Fatalf("the deploy's answer's urls (-want +got):\n%s", d)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	if _, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &a); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, a.URLs); d != "" {
		t.Fatalf("the app's urls (-want +got):\n%s", d)
	}
	var list struct {
		Items []struct{ URLs []urlOut }
	}
	if _, err := tc.call(0, "GET", "/api/v1/apps", tok["alice"], nil, nil, &list); err != nil || len(list.Items) != 1 || !cmp.Equal(want, list.Items[0].URLs) {
		t.Fatalf("the list's urls: %+v %v", list, err)
	}
}

// TestAdvertiseAddrNamesTheNode: an agent's --advertise-addr is the node's
// address, in the node record and in its apps' URLs.
func TestAdvertiseAddrNamesTheNode(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	dir := filepath.Join(tc.dir, "pve7")
	sim, err := simnode.Start(dir, "pve7")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := tc.logger()
	ag, err := agent.New(agent.Config{Node: "pve7", Coordinators: tc.grpcAddrs(), JoinToken: tc.joinToken(nil), DataDir: dir,
		Runtime: sim.Runtime, Version: "test", Logger: log, InventoryEvery: 200 * time.Millisecond, AdvertiseAddr: "pve7.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sim.Close() })
	var nodes struct {
		Items []struct{ Name, Address string }
	}
	waitFor(t, "pve7's address", 10*time.Second, func() bool {
		_, _ = tc.call(0, "GET", "/api/v1/nodes", tc.token, nil, nil, &nodes)
		return len(nodes.Items) == 1 && nodes.Items[0].Address == "pve7.example.net"
	})
	var a struct {
		PublicPorts []int `json:"public_ports"`
		URLs        []urlOut
	}
	waitFor(t, "a deploy", 10*time.Second, func() bool {
		code, _ := tc.call(0, "POST", "/api/v1/apps", tc.token, map[string]any{"catalog_id": "homepage", "hostname": "home"}, map[string]string{"Idempotency-Key": "home-1"}, &a)
		return code == http.StatusAccepted || code == http.StatusOK
	})
	if len(a.URLs) != 1 || a.URLs[0].URL != fmt.Sprintf("http://pve7.example.net:%d", a.PublicPorts[0]) || !a.URLs[0].Main {
		t.Fatalf("urls on an advertised address: %+v", a)
	}
}
