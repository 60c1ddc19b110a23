package pvesim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// CertFile is where Serve writes its self-signed certificate, like
// /etc/pve/local/pve-ssl.pem on a node; clients pin it as their root.
const CertFile = "pve-ssl.pem"

// Server is a running API server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	// CertPath is the PEM file of the server's certificate.
	CertPath string
}

// URL is the API base, https://host:port/api2/json.
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() + "/api2/json" }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Serve starts the API on addr over HTTPS with a fresh self-signed
// certificate for the listening address and the node name.
func Serve(st *Store, addr, token string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	cert, pemBytes, err := selfSigned(st.Node, host)
	if err != nil {
		ln.Close()
		return nil, err
	}
	path := filepath.Join(st.Dir, CertFile)
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{
		Handler:           NewAPI(st, token),
		ReadHeaderTimeout: 10 * time.Second,
		// pve-http-server speaks HTTP/1.1; errors are written on the raw
		// connection, which HTTP/2 would not allow.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	s := &Server{srv: srv, ln: ln, CertPath: path}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return s, nil
}

func selfSigned(node, host string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, Organization: []string{"PVE Cluster Node"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * 365 * 24 * time.Hour),
		DNSNames:     []string{node, "localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serveCmd is `pvesim serve --addr H:P [--token T]`; it serves until
// SIGINT or SIGTERM.
func serveCmd(st *Store, args []string, env func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8006", "listen address")
	token := fs.String("token", env("PVESIM_API_TOKEN"), "accepted API token USER@REALM!ID=SECRET (default: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := st.View(func(*Node) error { return nil }); err != nil {
		return err
	}
	s, err := Serve(st, *addr, *token)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving node %s at %s (certificate %s)\n", st.Node, s.URL(), s.CertPath)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
