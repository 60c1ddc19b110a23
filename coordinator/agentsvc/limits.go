package agentsvc

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	"github.com/proximity-ve/proximity/proto"
)

// Limits on what a peer can make the service do before it has proven who
// it is. Join is reachable by anyone who can reach the port: the CA pin a
// join token carries is in every TLS handshake.
const (
	// joinRate and joinBurst bound Join calls per source address.
	joinRate  = 5
	joinBurst = 10
	// maxPeers bounds the source addresses a limiter tracks.
	maxPeers = 10_000
	// maxConns and maxConnsPerPeer bound open connections, in total and
	// per source address (an agent holds one; a scale test on one host
	// holds one per simulated agent).
	maxConns        = 4096
	maxConnsPerPeer = 256
	// maxStreams bounds the concurrent calls on one connection.
	maxStreams = 128
	// handshakeTimeout bounds the TLS and HTTP/2 handshakes of a new
	// connection.
	handshakeTimeout = 10 * time.Second
)

func serverLimits() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.MaxConcurrentStreams(maxStreams),
	}
}

// PeerKey is the key a limiter counts a remote address under: the IP
// address of "host:port" (an IPv4-mapped address as IPv4), the /64 of an
// IPv6 address (one host usually holds a whole /64), or the string itself
// when it is not an address.
func PeerKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return addr
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// PeerLimiter is a token bucket per source address (see PeerKey). Its
// table is bounded: when it is full, the buckets that have been idle long
// enough to be full again are dropped (which forgets nothing), and if that
// frees no room, the addresses it cannot track share one bucket.
type PeerLimiter struct {
	rate  rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	peers     map[string]*peerBucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type peerBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// NewPeerLimiter allows each address perSecond events on average and
// burst at once, and tracks up to max addresses.
func NewPeerLimiter(perSecond float64, burst, max int) *PeerLimiter {
	return &PeerLimiter{rate: rate.Limit(perSecond), burst: burst, max: max,
		peers: map[string]*peerBucket{}, overflow: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Allow takes one event from addr's bucket. It returns 0 if the event is
// allowed, otherwise how long until it would be.
func (l *PeerLimiter) Allow(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.bucket(PeerKey(addr), now)
	if lim.AllowN(now, 1) {
		return 0
	}
	return l.until(lim, now)
}

// Wait returns how long until addr's bucket allows an event (0: now),
// taking nothing.
func (l *PeerLimiter) Wait(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.peers[PeerKey(addr)]
	if !ok {
		if len(l.peers) < l.max {
			return 0 // a new address starts with a full bucket
		}
		return l.until(l.overflow, now)
	}
	return l.until(b.lim, now)
}

// Len is the number of addresses tracked.
func (l *PeerLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers)
}

func (l *PeerLimiter) until(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// bucket returns key's limiter, making one if there is room.
func (l *PeerLimiter) bucket(key string, now time.Time) *rate.Limiter {
	if b, ok := l.peers[key]; ok {
		b.last = now
		return b.lim
	}
	if len(l.peers) >= l.max && now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		refill := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
		for k, b := range l.peers {
			if now.Sub(b.last) >= refill {
				delete(l.peers, k)
			}
		}
	}
	if len(l.peers) >= l.max {
		return l.overflow
	}
	b := &peerBucket{lim: rate.NewLimiter(l.rate, l.burst), last: now}
	l.peers[key] = b
	return b.lim
}

// LimitListener caps the connections ln hands to the gRPC server, in
// total and per source address: a connection over either cap is closed
// as soon as it is accepted. Serve the gRPC server on the listener it
// returns.
func (s *Service) LimitListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, s: s, total: maxConns, perPeer: maxConnsPerPeer, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	s              *Service
	total, perPeer int

	mu      sync.Mutex
	n       int
	open    map[string]int
	refused atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := PeerKey(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.n < l.total && l.open[key] < l.perPeer
		if ok {
			l.n++
			l.open[key]++
		}
		l.mu.Unlock()
		if ok {
			setUserTimeout(c, proto.KeepaliveTimeout)
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.release(key) })}, nil
		}
		_ = c.Close()
		if n := l.refused.Add(1); l.s.logs.allow() {
			l.s.log.Warn("agent port: connection refused, over the connection cap", "remote", key,
				"max_total", l.total, "max_per_address", l.perPeer, "refused_so_far", n)
		}
	}
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// logLimiter keeps a flood of refusals from flooding the log: a few lines
// at once, then one per second.
type logLimiter struct{ lim *rate.Limiter }

func newLogLimiter() logLimiter { return logLimiter{rate.NewLimiter(1, 5)} }

func (l logLimiter) allow() bool { return l.lim.Allow() }
