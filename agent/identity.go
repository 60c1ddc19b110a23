package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// Files in the data directory.
const (
	keyFile     = "node.key"
	joinKeyFile = "join.key" // the key of a join under way
	certFile    = "node.crt"
	caFile      = "ca.crt"
	serversFile = "servers.json"
)

// ErrJoinRefused is a join the cluster refused (bad, used or expired
// token, or a token for another CA): retrying cannot help.
var ErrJoinRefused = errors.New("join refused")

// identity is the node's key, certificate and the pinned cluster CA.
type identity struct {
	dir  string
	node string
	key  *ecdsa.PrivateKey
	cert atomic.Pointer[tls.Certificate]
	ca   *x509.Certificate
}

func (id *identity) path(name string) string { return filepath.Join(id.dir, name) }

// load reads a saved identity; ok is false when the node has not joined.
func (id *identity) load() (bool, error) {
	certPEM, err := os.ReadFile(id.path(certFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	keyPEM, err := os.ReadFile(id.path(keyFile))
	if err != nil {
		return false, err
	}
	caPEM, err := os.ReadFile(id.path(caFile))
	if err != nil {
		return false, err
	}
	cb, _ := pem.Decode(certPEM)
	ab, _ := pem.Decode(caPEM)
	if cb == nil || ab == nil {
		return false, fmt.Errorf("%s: identity files are not PEM", id.dir)
	}
	if id.key, err = parseKeyPEM(keyPEM); err != nil {
		return false, fmt.Errorf("%s: %w", id.path(keyFile), err)
	}
	if id.ca, err = x509.ParseCertificate(ab.Bytes); err != nil {
		return false, err
	}
	return true, id.setCert(cb.Bytes)
}

func (id *identity) setCert(der []byte) error {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if leaf.Subject.CommonName != id.node {
		return fmt.Errorf("the certificate in %s is node %q's, not %q's", id.dir, leaf.Subject.CommonName, id.node)
	}
	id.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.key, Leaf: leaf})
	return nil
}

// joinKey is the key a join uses, saved before the join is sent: an agent
// that dies after the cluster consumed its token, but before it saved the
// certificate, joins again with the same token and the same key, and the
// cluster takes that for the same join.
func (id *identity) joinKey() (*ecdsa.PrivateKey, error) {
	path := id.path(joinKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if key, err := parseKeyPEM(data); err == nil {
			return key, nil
		}
		// A damaged file is replaced: the join then needs a new token.
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	data, err = keyPEM(key)
	if err != nil {
		return nil, err
	}
	return key, writeFile(path, data, 0o600)
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pki.PEM("EC PRIVATE KEY", der), nil
}

func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("not PEM")
	}
	return x509.ParseECPrivateKey(b.Bytes)
}

// save writes the identity, the key 0600, each file atomically.
func (id *identity) save(certDER []byte) error {
	key, err := keyPEM(id.key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{keyFile, key},
		{caFile, pki.PEM("CERTIFICATE", id.ca.Raw)},
		{certFile, pki.PEM("CERTIFICATE", certDER)},
	} {
		if err := writeFile(id.path(f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tlsConfig is the mTLS client configuration: the pinned CA as the only
// root and the current certificate, read at each handshake so renewals
// apply without redialling.
func (id *identity) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(id.ca)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: pki.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.cert.Load(), nil
		},
	}
}

// join enrols the node with a join token: the coordinator's CA must match
// the token's pin before the CSR is sent.
func (a *Agent) join(ctx context.Context) error {
	tok, err := pki.ParseToken(a.cfg.JoinToken)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJoinRefused, err)
	}
	key, err := a.id.joinKey()
	if err != nil {
		return err
	}
	csr, err := pki.CSR(key, a.cfg.Node)
	if err != nil {
		return err
	}
	pinned := &tls.Config{
		MinVersion:            tls.VersionTLS13,
		InsecureSkipVerify:    true, // replaced by the pin check below
		VerifyPeerCertificate: pki.VerifyPinned(tok.Pin),
	}
	backoff := 200 * time.Millisecond
	for i := 0; ; i++ {
		addr := a.servers.pick(i)
		resp, leader, err := joinOnce(ctx, addr, pinned, &pb.JoinRequest{Token: a.cfg.JoinToken, Node: a.cfg.Node, CsrDer: csr, AgentVersion: a.cfg.Version})
		if err == nil {
			ca, err := x509.ParseCertificate(resp.CaDer)
			if err != nil || pki.Pin(resp.CaDer) != tok.Pin {
				return fmt.Errorf("%w: the coordinator returned a CA that does not match the token", ErrJoinRefused)
			}
			a.id.key, a.id.ca = key, ca
			if err := a.id.setCert(resp.CertDer); err != nil {
				return err
			}
			if err := a.id.save(resp.CertDer); err != nil {
				return err
			}
			if err := os.Remove(a.id.path(joinKeyFile)); err != nil {
				a.log.Warn("remove the join key", "err", err)
			}
			a.servers.merge(resp.Servers)
			a.log.Info("joined the cluster", "node", a.cfg.Node, "via", addr)
			return nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.InvalidArgument, codes.PermissionDenied:
			return fmt.Errorf("%w: %s", ErrJoinRefused, status.Convert(err).Message())
		}
		if strings.Contains(err.Error(), pki.ErrPinMismatch.Error()) {
			return fmt.Errorf("%w: coordinator %s: %v", ErrJoinRefused, addr, pki.ErrPinMismatch)
		}
		if leader != "" {
			a.servers.prefer(leader)
			continue
		}
		a.log.Warn("join attempt failed", "coordinator", addr, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func joinOnce(ctx context.Context, addr string, tc *tls.Config, req *pb.JoinRequest) (*pb.JoinResponse, string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var trailer metadata.MD
	resp, err := pb.NewAgentClient(conn).Join(ctx, req, grpc.Trailer(&trailer))
	return resp, first(trailer.Get(proto.LeaderTrailer)), err
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// renewLoop renews the certificate when two thirds of its life are gone.
func (a *Agent) renewLoop(ctx context.Context) {
	for {
		leaf := a.id.cert.Load().Leaf
		issued := pki.Issued(leaf)
		at := issued.Add(leaf.NotAfter.Sub(issued) * 2 / 3)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		key, csr, err := pki.NewKeyAndCSR(a.cfg.Node)
		if err != nil {
			a.log.Error("renew: key", "err", err)
			continue
		}
		var resp *pb.RenewResponse
		err = a.call(ctx, func(ctx context.Context, c pb.AgentClient, opts ...grpc.CallOption) error {
			var err error
			resp, err = c.Renew(ctx, &pb.RenewRequest{Node: a.cfg.Node, CsrDer: csr}, opts...)
			return err
		})
		if err != nil {
			a.log.Warn("renew certificate", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			continue
		}
		old := a.id.key
		a.id.key = key
		if err := a.id.setCert(resp.CertDer); err != nil {
			a.id.key = old
			a.log.Error("renewed certificate unusable", "err", err)
			continue
		}
		if err := a.id.save(resp.CertDer); err != nil {
			a.log.Error("save renewed certificate", "err", err)
		}
		a.log.Info("certificate renewed", "expires", a.id.cert.Load().Leaf.NotAfter)
	}
}

// serverList is the coordinators the agent knows, persisted so that a
// restarted agent can reach the cluster even if its --coordinator is gone.
type serverList struct {
	path  string
	addrs atomic.Pointer[[]string]
}

func newServerList(path string, seed []string) *serverList {
	s := &serverList{path: path}
	list := append([]string(nil), seed...)
	if b, err := os.ReadFile(path); err == nil {
		var saved []string
		if json.Unmarshal(b, &saved) == nil {
			list = union(list, saved)
		}
	}
	s.addrs.Store(&list)
	return s
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found && x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (s *serverList) list() []string { return *s.addrs.Load() }

func (s *serverList) pick(i int) string {
	l := s.list()
	return l[i%len(l)]
}

func (s *serverList) merge(addrs []string) {
	old := s.list()
	l := union(old, addrs)
	if len(l) == len(old) {
		return
	}
	s.addrs.Store(&l)
	if b, err := json.Marshal(l); err == nil {
		_ = writeFile(s.path, b, 0o600)
	}
}

// prefer moves addr to the front (the leader, as a follower named it).
func (s *serverList) prefer(addr string) {
	l := []string{addr}
	for _, x := range s.list() {
		if x != addr {
			l = append(l, x)
		}
	}
	s.addrs.Store(&l)
}
