package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ServerSAN is the DNS name in every server certificate of the server CA.
// Peers verify it instead of an address, so that a certificate of another
// kind can never pose as a server, whatever address it comes from.
const ServerSAN = "server.proximity"

// Connection types: after the TLS handshake on the server port, the
// dialler sends one byte that says what the connection carries.
const (
	connRaft byte = 'R' // hashicorp/raft's wire protocol
	connHTTP byte = 'H' // HTTP/1.1: requests forwarded to the leader, and server status
)

const (
	// handshakeTimeout bounds a TLS handshake and the type byte on the
	// server port; a peer that stalls is cut off.
	handshakeTimeout = 5 * time.Second
	// maxPendingHandshakes caps the handshakes in progress, so a flood of
	// connections from outsiders costs bounded memory.
	maxPendingHandshakes = 64
)

// tlsMaterial is what this server needs for server-to-server TLS under
// one keyring: the pool of the CAs of every key, and a certificate for
// this server signed by the primary key's CA.
type tlsMaterial struct {
	keys Keys
	pool *x509.CertPool
	cert tls.Certificate
}

// newTLSMaterial issues this server a certificate under the primary key's
// CA. The certificate's key is made anew at every start and never leaves
// memory.
func newTLSMaterial(nodeID string, ks Keys) (*tlsMaterial, error) {
	pool := x509.NewCertPool()
	var caCert *x509.Certificate
	var caKey any
	for i, k := range ks {
		c, priv, err := k.serverCA()
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		if i == 0 {
			caCert, caKey = c, priv
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{"server"}},
		DNSNames:     []string{ServerSAN},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tlsMaterial{keys: ks, pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, nil
}

// verifyServerLeaf checks that a verified peer is a server: its
// certificate names ServerSAN.
func verifyServerLeaf(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	if !slices.Contains(cs.PeerCertificates[0].DNSNames, ServerSAN) {
		return errors.New("peer certificate is not a server certificate")
	}
	return nil
}

func (c *Cluster) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := c.tlsm.Load()
			return &tls.Config{
				MinVersion:       tls.VersionTLS13,
				Certificates:     []tls.Certificate{m.cert},
				ClientAuth:       tls.RequireAndVerifyClientCert,
				ClientCAs:        m.pool,
				VerifyConnection: verifyServerLeaf,
			}, nil
		},
	}
}

func (c *Cluster) clientTLS() *tls.Config {
	m := c.tlsm.Load()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.pool,
		ServerName:   ServerSAN,
	}
}

// dialServer opens an authenticated connection of type typ to another
// server's port.
func (c *Cluster) dialServer(ctx context.Context, addr string, typ byte) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, c.clientTLS())
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls with server %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write([]byte{typ}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// serverPort accepts connections on --raft-addr: every connection must
// complete mutual TLS with a server certificate of this cluster's keys,
// then name its type; anything else is closed without an answer.
type serverPort struct {
	ln        net.Listener
	cfg       *tls.Config
	log       *slog.Logger
	raft      *chanListener
	http      *chanListener
	pending   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func newServerPort(ln net.Listener, cfg *tls.Config, log *slog.Logger) *serverPort {
	p := &serverPort{
		ln: ln, cfg: cfg, log: log, pending: make(chan struct{}, maxPendingHandshakes), done: make(chan struct{}),
		raft: newChanListener(ln.Addr()), http: newChanListener(ln.Addr()),
	}
	go p.serve()
	return p
}

func (p *serverPort) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			p.log.Error("server port accept", "err", err)
			p.Close()
			return
		}
		select {
		case p.pending <- struct{}{}:
			go p.handshake(conn)
		default:
			// Too many handshakes in progress: refuse this one.
			conn.Close()
		}
	}
}

func (p *serverPort) handshake(raw net.Conn) {
	defer func() { <-p.pending }()
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	conn := tls.Server(raw, p.cfg)
	if err := conn.Handshake(); err != nil {
		p.log.Debug("server port: refused a connection", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var typ [1]byte
	if _, err := io.ReadFull(conn, typ[:]); err != nil {
		conn.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var target *chanListener
	switch typ[0] {
	case connRaft:
		target = p.raft
	case connHTTP:
		target = p.http
	default:
		conn.Close()
		return
	}
	if !target.deliver(conn) {
		conn.Close()
	}
}

// Close stops accepting; established connections are closed by their
// users.
func (p *serverPort) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.ln.Close()
		p.raft.Close()
		p.http.Close()
	})
}

// chanListener is a net.Listener fed with connections the server port
// has authenticated.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	case <-time.After(handshakeTimeout):
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is Raft's transport over the server port.
type streamLayer struct {
	c   *Cluster
	ln  *chanListener
	adv net.Addr
}

func (s *streamLayer) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *streamLayer) Close() error              { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr            { return s.adv }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.c.dialServer(ctx, string(address), connRaft)
}

// peerKey is the context key under which a request that came over the
// server port carries the sending server's ID.
type peerKey struct{}

// FromServer returns the ID of the server that sent a request over the
// server port; ok is false for every request from elsewhere, such as the
// public API port.
func FromServer(ctx context.Context) (id string, ok bool) {
	id, ok = ctx.Value(peerKey{}).(string)
	return id, ok
}

func serverConnContext(ctx context.Context, conn net.Conn) context.Context {
	if tc, ok := conn.(*tls.Conn); ok {
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			return context.WithValue(ctx, peerKey{}, cs.PeerCertificates[0].Subject.CommonName)
		}
	}
	return ctx
}

// newForwardClient is the HTTP client for requests to other servers over
// the server port: plain HTTP/1.1 inside the authenticated TLS
// connection.
func (c *Cluster) newForwardClient() *http.Client {
	return &http.Client{
		// A relay passes the leader's answer on as it is: a redirect is
		// the client's to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return c.dialServer(ctx, addr, connHTTP)
			},
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}}
}
