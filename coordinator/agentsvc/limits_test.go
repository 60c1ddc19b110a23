package agentsvc

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestPeerKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5000":              "192.0.2.7",
		"192.0.2.7":                   "192.0.2.7",
		"[::ffff:192.0.2.7]:5000":     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":  "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1%eth0]:1": "2001:db8:1:2::/64",
		"@":                           "@",
	} {
		if got := PeerKey(in); got != want {
			t.Errorf("PeerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPeerLimiterBucketsPerAddress: each address has its own bucket (an
// IPv6 /64 is one address); an empty bucket says how long until the next
// event.
func TestPeerLimiterBucketsPerAddress(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewPeerLimiter(5, 10, 100)
	for i := 0; i < 10; i++ {
		if w := l.Allow("192.0.2.1:1000", t0); w != 0 {
			t.Fatalf("event %d of the burst refused (wait %v)", i, w)
		}
	}
	if w := l.Allow("192.0.2.1:1001", t0); w != 200*time.Millisecond {
		t.Fatalf("past the burst: wait %v, want 200ms", w)
	}
	if w := l.Wait("192.0.2.1:1", t0); w != 200*time.Millisecond {
		t.Fatalf("Wait past the burst: %v", w)
	}
	if w := l.Allow("192.0.2.2:1000", t0); w != 0 {
		t.Fatalf("another address shares the bucket (wait %v)", w)
	}
	if w := l.Allow("192.0.2.1:1000", t0.Add(200*time.Millisecond)); w != 0 {
		t.Fatalf("after one refill: wait %v", w)
	}
	for i := 0; i < 10; i++ {
		l.Allow("[2001:db8::1]:1", t0)
	}
	if w := l.Allow("[2001:db8::2]:1", t0); w == 0 {
		t.Fatal("two addresses of one IPv6 /64 have a bucket each")
	}
}

// TestPeerLimiterIsBounded: the table holds at most max addresses; the
// addresses it cannot track share one bucket, and buckets idle long
// enough to be full again are dropped to make room.
func TestPeerLimiterIsBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewPeerLimiter(1, 2, 3)
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		l.Allow(a, t0)
	}
	// Two more addresses share the overflow bucket (burst 2).
	first, second := l.Allow("198.51.100.1", t0), l.Allow("198.51.100.2", t0)
	if first != 0 || second != 0 {
		t.Fatal("the overflow bucket refused its burst")
	}
	if l.Allow("198.51.100.3", t0) == 0 {
		t.Fatal("untracked addresses do not share a bucket")
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("%d addresses tracked, want 3", n)
	}
	// Two seconds later the buckets are full again: dropped, and the new
	// address gets a bucket of its own.
	later := t0.Add(2 * time.Second)
	first, second = l.Allow("203.0.113.1", later), l.Allow("203.0.113.1", later)
	if first != 0 || second != 0 {
		t.Fatal("a new address after the sweep lacks its burst")
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("%d addresses tracked after the sweep, want 1", n)
	}
}

// TestLimitListenerCapsConnections: a connection over the per-address or
// the total cap is closed when it is accepted; closing an accepted one
// makes room.
func TestLimitListenerCapsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ll := &limitListener{Listener: ln, s: s, total: 3, perPeer: 2, open: map[string]int{}}
	defer ll.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// refused reports whether the server closed the connection at once,
	// which the client reads as the end.
	refused := func(c net.Conn) bool {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	var server []net.Conn
	take := func() {
		t.Helper()
		select {
		case c := <-accepted:
			server = append(server, c)
		case <-time.After(5 * time.Second):
			t.Fatal("a connection within the caps was not handed over")
		}
	}
	dial("127.0.0.1")
	take()
	dial("127.0.0.1")
	take()
	if !refused(dial("127.0.0.1")) {
		t.Fatal("a third connection from 127.0.0.1 was kept (per-address cap 2)")
	}
	dial("127.0.0.2")
	take()
	if !refused(dial("127.0.0.3")) {
		t.Fatal("a fourth connection was kept (total cap 3)")
	}
	server[0].Close()
	server[0].Close() // a second Close releases nothing more
	dial("127.0.0.1")
	take()
	if !refused(dial("127.0.0.4")) {
		t.Fatal("a double Close made room twice")
	}
}
