package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is an in-process SSH server on loopback that records the
// commands it is asked to run and their stdin, and answers `hostname`.
type sshServer struct {
	addr    string
	hostKey ssh.Signer
	mu      sync.Mutex
	cmds    []string
	stdins  map[string][]byte
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.%d.%d.%d:0", 10+mrand.IntN(200), mrand.IntN(250), 2+mrand.IntN(250)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func startSSH(t *testing.T, clientKey ssh.PublicKey) *sshServer {
	t.Helper()
	hostKey, _ := newKey(t)
	s := &sshServer{hostKey: hostKey, stdins: map[string][]byte{}}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), clientKey.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hostKey)
	ln := loopback(t)
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s
}

func (s *sshServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range requests {
				if req.Type != "exec" {
					_ = req.Reply(false, nil)
					continue
				}
				cmd := string(req.Payload[4:])
				_ = req.Reply(true, nil)
				in, _ := io.ReadAll(ch)
				s.mu.Lock()
				s.cmds = append(s.cmds, cmd)
				s.stdins[cmd] = in
				s.mu.Unlock()
				if cmd == "hostname" {
					fmt.Fprintln(ch, "pve9")
				}
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, 0)
				_, _ = ch.SendRequest("exit-status", false, status)
				return
			}
		}()
	}
}

func knownHostsFile(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	line := ""
	if key != nil {
		line = knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	}
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func installOpts(t *testing.T, target, known string, keyPEM []byte) *installOptions {
	t.Helper()
	dir := t.TempDir()
	id := filepath.Join(dir, "id")
	pkg := filepath.Join(dir, "proximity-agent_0.3.0-1_amd64.deb")
	os.WriteFile(id, keyPEM, 0o600)
	os.WriteFile(pkg, []byte("!<arch>\nnot really a deb\n"), 0o644)
	return &installOptions{target: "root@" + target, joinToken: "pxj_secret", coordinator: "10.0.0.5:7073", pkg: pkg,
		identity: id, knownHosts: known, connectTimeout: time.Second, commandTimeout: 5 * time.Second,
		getenv: func(string) string { return "" }, out: io.Discard}
}

func TestNodeInstallOverSSH(t *testing.T) {
	client, clientPEM := newKey(t)
	srv := startSSH(t, client.PublicKey())
	o := installOpts(t, srv.addr, knownHostsFile(t, srv.addr, srv.hostKey.PublicKey()), clientPEM)
	if err := o.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	want := []string{"hostname", "umask 077 && cat > /var/tmp/proximity-agent-install.deb", "dpkg -i", "/etc/proximity/agent.yaml", "systemctl enable proximity-agent.service && systemctl restart"}
	if len(srv.cmds) != len(want) {
		t.Fatalf("commands: %q", srv.cmds)
	}
	for i, w := range want {
		if !strings.Contains(srv.cmds[i], w) {
			t.Fatalf("command %d: %q, want it to contain %q", i, srv.cmds[i], w)
		}
		if strings.Contains(srv.cmds[i], "pxj_secret") {
			t.Fatalf("the join token is on a command line: %q", srv.cmds[i])
		}
	}
	if got := string(srv.stdins[srv.cmds[1]]); got != "!<arch>\nnot really a deb\n" {
		t.Fatalf("package bytes: %q", got)
	}
	conf := string(srv.stdins[srv.cmds[3]])
	for _, w := range []string{"node: pve9", "coordinator: 10.0.0.5:7073", "join-token: pxj_secret", "data-dir: /var/lib/proximity-agent"} {
		if !strings.Contains(conf, w) {
			t.Fatalf("agent.yaml lacks %q:\n%s", w, conf)
		}
	}
}

func TestNodeInstallRefusesUnknownOrChangedHostKeys(t *testing.T) {
	client, clientPEM := newKey(t)
	srv := startSSH(t, client.PublicKey())
	other, _ := newKey(t)
	for name, tc := range map[string]struct {
		known ssh.PublicKey
		want  string
	}{
		"unknown": {nil, "is not in"},
		"changed": {other.PublicKey(), "has CHANGED"},
	} {
		o := installOpts(t, srv.addr, knownHostsFile(t, srv.addr, tc.known), clientPEM)
		err := o.run(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s host key: %v, want an error containing %q", name, err, tc.want)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.cmds) != 0 {
		t.Fatalf("commands ran despite a refused host key: %q", srv.cmds)
	}
}

func TestAuditFinding23NodeInstallTimesOutOnAHungServer(t *testing.T) {
	ln := loopback(t) // accepts connections and never says anything
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	_, clientPEM := newKey(t)
	hostKey, _ := newKey(t)
	o := installOpts(t, ln.Addr().String(), knownHostsFile(t, ln.Addr().String(), hostKey.PublicKey()), clientPEM)
	done := make(chan error, 1)
	go func() { done <- o.run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("hung server: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node install did not give up on a server that never answers")
	}
}
