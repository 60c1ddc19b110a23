package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

func testKeys(t *testing.T) Keys {
	t.Helper()
	text, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseKeys([]byte(text + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func clusterWith(t *testing.T, id string, ks Keys) *Cluster {
	t.Helper()
	m, err := newTLSMaterial(id, ks)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{}
	c.tlsm.Store(m)
	return c
}

// TestServerPortAcceptsOnlyServersOfTheSameKey: mutual TLS on the server
// port admits a server whose certificate comes from the same cluster key,
// and refuses one of another key, a client with no certificate, and a
// certificate of the right CA without the server name.
func TestServerPortAcceptsOnlyServersOfTheSameKey(t *testing.T) {
	keyA, keyB := testKeys(t), testKeys(t)
	server := clusterWith(t, "a1", keyA)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := newServerPort(ln, server.serverTLS(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer port.Close()
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan error, 1)
	go func() {
		c, err := port.raft.Accept()
		if err == nil {
			_, err = c.Write([]byte("ok"))
			c.Close()
		}
		got <- err
	}()
	peer := clusterWith(t, "a2", keyA)
	conn, err := peer.dialServer(ctx, addr, connRaft)
	if err != nil {
		t.Fatalf("a server of the same key: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read over the server port: %q %v", buf, err)
	}
	conn.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	// Another key: the handshake fails on one side or the other, and
	// nothing reaches Raft.
	rogue := clusterWith(t, "b1", keyB)
	if c, err := rogue.dialServer(ctx, addr, connRaft); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
			t.Fatal("a server of another key was answered")
		}
		c.Close()
	}
	// No client certificate at all, trusting the server blindly.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		_, _ = c.Write([]byte{connRaft})
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
			t.Fatal("a client without a certificate was answered")
		}
		c.Close()
	}
	select {
	case <-port.raft.conns:
		t.Fatal("a refused connection reached Raft")
	default:
	}
}

// TestServerCADerivesTheSameOnEveryServer: the server CA comes from the
// key alone, so two servers agree on it byte for byte, and another key
// gives another CA.
func TestServerCADerivesTheSameOnEveryServer(t *testing.T) {
	ks := testKeys(t)
	a, _, err := ks.Primary().serverCA()
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := ks.Primary().serverCA()
	if string(a.Raw) != string(b.Raw) {
		t.Fatal("the same key gave two CA certificates")
	}
	c, _, _ := testKeys(t).Primary().serverCA()
	if string(a.Raw) == string(c.Raw) {
		t.Fatal("two keys gave the same CA")
	}
	k := ks.Primary()
	if string(k.gossipKey()) == string(k.sealKey().ID()) || string(k.gossipKey()) == string(k.raw[:]) {
		t.Fatal("derived keys repeat the key")
	}
}

func TestKeyFileRules(t *testing.T) {
	text, _ := GenerateKey()
	if _, err := ParseKeys([]byte("# comment\n\n" + text + "\n")); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"empty": "", "not base64": "!!!\n", "short": "AAAA\n", "twice": text + "\n" + text + "\n",
	} {
		if _, err := ParseKeys([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	p := dir + "/k"
	if _, err := WriteNewKeyFile(p); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNewKeyFile(p); err == nil {
		t.Fatal("overwrote a key file")
	}
	if _, err := LoadKeys(p); err != nil {
		t.Fatal(err)
	}
	if err := chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(p); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}

func chmod(p string, mode uint32) error { return os.Chmod(p, os.FileMode(mode)) }

// TestServerPortSortsConnectionsByType: after the handshake a connection
// names what it carries; Raft's and HTTP's go to their listeners, any
// other type is closed unanswered, and once the port is closed its
// listeners say so.
func TestServerPortSortsConnectionsByType(t *testing.T) {
	ks := testKeys(t)
	server := clusterWith(t, "a1", ks)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := newServerPort(ln, server.serverTLS(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer port.Close()
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer := clusterWith(t, "a2", ks)

	for _, tc := range []struct {
		typ byte
		ln  *chanListener
	}{{connRaft, port.raft}, {connHTTP, port.http}} {
		got := make(chan net.Conn, 1)
		go func() {
			if c, err := tc.ln.Accept(); err == nil {
				got <- c
			}
		}()
		conn, err := peer.dialServer(ctx, addr, tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		c := <-got
		if id, ok := serverConnContext(context.Background(), c).Value(peerKey{}).(string); !ok || id != "a2" {
			t.Fatalf("type %q: the connection names server %q", tc.typ, id)
		}
		c.Close()
		conn.Close()
	}
	if id, ok := FromServer(context.Background()); ok || id != "" {
		t.Fatal("a request from elsewhere passes for a server's")
	}

	conn, err := peer.dialServer(ctx, addr, 'X')
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection of an unknown type was answered")
	}
	conn.Close()
	select {
	case <-port.raft.conns:
		t.Fatal("a connection of an unknown type reached Raft")
	case <-port.http.conns:
		t.Fatal("a connection of an unknown type reached HTTP")
	default:
	}

	port.Close()
	if _, err := port.raft.Accept(); err != net.ErrClosed {
		t.Fatalf("Accept on a closed port: %v", err)
	}
	if port.http.deliver(nil) {
		t.Fatal("a closed listener took a connection")
	}
	if port.raft.Addr().String() != addr {
		t.Fatalf("listener address %s", port.raft.Addr())
	}
}

// TestServerLeafMustNameTheServerSAN: a peer with no certificate, or one
// without the server name, is not a server.
func TestServerLeafMustNameTheServerSAN(t *testing.T) {
	if err := verifyServerLeaf(tls.ConnectionState{}); err == nil {
		t.Fatal("no certificate passed")
	}
	m, err := newTLSMaterial("a1", testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyServerLeaf(tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.cert.Leaf}}); err != nil {
		t.Fatalf("a server certificate: %v", err)
	}
	other := *m.cert.Leaf
	other.DNSNames = []string{"agent.proximity"}
	if err := verifyServerLeaf(tls.ConnectionState{PeerCertificates: []*x509.Certificate{&other}}); err == nil {
		t.Fatal("a certificate without the server name passed")
	}
}
