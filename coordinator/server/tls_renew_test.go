package server

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The API certificate issued from the cluster CA is issued again once a
// third of its life is left, for the same names and from the same CA, and
// is kept until then.
func TestAPICertificateIsRenewedWithAThirdOfItsLifeLeft(t *testing.T) {
	tc := newTestCluster(t, 1)
	srv := tc.nodes[0].server()
	pem, err := os.ReadFile(filepath.Join(tc.nodes[0].cfg.DataDir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	setNow := func(d time.Duration) {
		srv.tls.mu.Lock()
		defer srv.tls.mu.Unlock()
		srv.tls.now = func() time.Time { return time.Now().Add(d) }
	}
	// served is the certificate a client sees at d from now, verified
	// against ca.pem at that time.
	served := func(d time.Duration) *x509.Certificate {
		t.Helper()
		setNow(d)
		conn, err := tls.Dial("tcp", tc.nodes[0].cfg.HTTPAddr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			Time: func() time.Time { return time.Now().Add(d) }})
		if err != nil {
			t.Fatalf("handshake %s from now: %v", d, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := served(0)
	if got := first.NotAfter.Sub(first.NotBefore); got < apiCertTTL-time.Hour || got > apiCertTTL+time.Hour {
		t.Fatalf("life %s, want about %s", got, apiCertTTL)
	}
	keep := time.Until(first.NotAfter) - apiCertTTL/3 - time.Hour
	if c := served(keep); c.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("renewed %s before a third of its life was left", keep)
	}
	renew := keep + 2*time.Hour
	second := served(renew)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("not renewed with less than a third of its life left (%s from now)", renew)
	}
	if !second.NotAfter.After(first.NotAfter) || len(second.DNSNames)+len(second.IPAddresses) != len(first.DNSNames)+len(first.IPAddresses) {
		t.Fatalf("renewed certificate: until %s, names %v %v; first until %s, names %v %v",
			second.NotAfter, second.DNSNames, second.IPAddresses, first.NotAfter, first.DNSNames, first.IPAddresses)
	}
}
