package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proximity-ve/proximity/internal/pki"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// CACertFile is the file, in every server's data directory, that holds
// the cluster CA's certificate (PEM): clients verify the API with it
// (PROXIMITY_CACERT).
const CACertFile = "ca.pem"

// apiCertTTL is the life of an API certificate issued from the cluster
// CA; it is issued again when a third of it is left.
const apiCertTTL = 90 * 24 * time.Hour

// apiTLS is the operator API's certificate source: the operator's own
// certificate and key files (re-read by Reload), or a certificate issued
// from the cluster CA for the --http-addr host and every --tls-san.
type apiTLS struct {
	s *Server

	operator atomic.Pointer[tls.Certificate]

	mu     sync.Mutex
	issued *tls.Certificate
	from   []byte // the CA certificate the issued one chains to
	// now is the clock certificates are issued and renewed by (nil:
	// time.Now); tests move it to reach a renewal.
	now func() time.Time
}

func (t *apiTLS) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: t.certificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// loadOperator reads the operator's certificate files, if configured.
func (t *apiTLS) loadOperator() error {
	cfg := t.s.cfg
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		return nil
	}
	if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	c, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
	}
	t.operator.Store(&c)
	return nil
}

func (t *apiTLS) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := t.operator.Load(); c != nil {
		return c, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.now != nil {
		now = t.now()
	}
	ca := t.s.agents.CA()
	if ca == nil {
		// A server that restarts applies its log only once it hears from
		// a leader; until then it serves the certificate it saved.
		if t.issued != nil && now.Before(t.issued.Leaf.NotAfter) {
			return t.issued, nil
		}
		return nil, errors.New("the cluster CA is not available yet")
	}
	if t.issued != nil && string(t.from) == string(ca.CertDER) && now.Before(t.issued.Leaf.NotAfter.Add(-apiCertTTL/3)) {
		return t.issued, nil
	}
	c, err := ca.APICert(t.s.cfg.NodeID, t.hosts(), now, apiCertTTL)
	if err != nil {
		return nil, err
	}
	t.issued, t.from = &c, ca.CertDER
	t.save(c, ca.CertDER)
	return t.issued, nil
}

// savedCert is the issued API certificate as kept in the data directory,
// its key sealed under the cluster key (so a copy of the data directory
// without the key file does not hold it).
type savedCert struct {
	Chain [][]byte        `json:"chain"`
	CA    []byte          `json:"ca"`
	Hosts []string        `json:"hosts"`
	Key   *secrets.Sealed `json:"key"`
}

const apiKeyPurpose = "api-certificate-key"

func (t *apiTLS) savedPath() string { return filepath.Join(t.s.cfg.DataDir, "api-cert.json") }

func (t *apiTLS) save(c tls.Certificate, caDER []byte) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err == nil {
		var sc savedCert
		sc.Chain, sc.CA, sc.Hosts = c.Certificate, caDER, t.hosts()
		if sc.Key, err = t.s.cl.Sealer().Seal(apiKeyPurpose, der); err == nil {
			var b []byte
			if b, err = json.Marshal(sc); err == nil {
				err = writeFileAtomic(t.savedPath(), b, 0o600)
			}
		}
	}
	if err != nil {
		t.s.log.Warn("save the API certificate", "err", err)
	}
}

// resave seals the saved certificate's key again under the primary key
// (after a key rotation).
func (t *apiTLS) resave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issued != nil && t.operator.Load() == nil {
		t.save(*t.issued, t.from)
	}
}

// loadSaved takes the saved certificate back if it is for the same names
// and this server's keys open it.
func (t *apiTLS) loadSaved() {
	b, err := os.ReadFile(t.savedPath())
	if err != nil {
		return
	}
	var sc savedCert
	if json.Unmarshal(b, &sc) != nil || len(sc.Chain) == 0 || !slices.Equal(sc.Hosts, t.hosts()) {
		return
	}
	der, err := t.s.cl.Sealer().Open(apiKeyPurpose, sc.Key)
	if err != nil {
		return
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return
	}
	leaf, err := x509.ParseCertificate(sc.Chain[0])
	if err != nil {
		return
	}
	t.mu.Lock()
	t.issued, t.from = &tls.Certificate{Certificate: sc.Chain, PrivateKey: key, Leaf: leaf}, sc.CA
	t.mu.Unlock()
}

// hosts are the names the issued certificate is valid for.
func (t *apiTLS) hosts() []string {
	var out []string
	if h, _, err := net.SplitHostPort(t.s.cfg.HTTPAddr); err == nil && h != "" {
		out = append(out, h)
	}
	return append(out, t.s.cfg.TLSSANs...)
}

// writeCACert writes <data-dir>/ca.pem once the cluster CA exists (the CA
// never changes), and issues this server's API certificate.
func (s *Server) writeCACert(ctx context.Context) {
	p := filepath.Join(s.cfg.DataDir, CACertFile)
	for {
		if pin := s.agents.CAPin(); pin != "" {
			if der := s.agents.CACertDER(); der != nil {
				want := pki.PEM("CERTIFICATE", der)
				if old, err := os.ReadFile(p); err != nil || string(old) != string(want) {
					if err := writeFileAtomic(p, want, 0o644); err != nil {
						s.log.Error("write CA certificate", "path", p, "err", err)
					} else {
						s.log.Info("CA certificate written", "path", p)
					}
				}
				// Issue (and save) the API certificate now rather than at
				// the first handshake, so a restart finds it.
				if _, err := s.tls.certificate(nil); err != nil {
					s.log.Warn("issue the API certificate", "err", err)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
