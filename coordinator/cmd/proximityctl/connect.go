package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// How proximityctl reaches the API. The API is HTTPS only: an address
// without a scheme means https://, and http:// is refused before anything
// (the token above all) is sent. The server is verified against the system
// roots plus the CA in --ca-cert or PROXIMITY_CACERT (the coordinator
// writes its CA to <data-dir>/ca.pem); an unverified server is refused
// unless --tls-skip-verify or PROXIMITY_SKIP_VERIFY says otherwise.

// Environment variables proximityctl reads.
const (
	envAddr       = "PROXIMITY_ADDR"
	envToken      = "PROXIMITY_TOKEN"
	envCACert     = "PROXIMITY_CACERT"
	envSkipVerify = "PROXIMITY_SKIP_VERIFY"
)

// connOptions are the global flags that choose how the server is trusted;
// a flag left unset falls back to its environment variable.
type connOptions struct {
	caCert     string // --ca-cert
	skipVerify bool   // --tls-skip-verify
}

// apiBase turns PROXIMITY_ADDR into the API's base URL.
func apiBase(raw string) (string, error) {
	addr := strings.TrimRight(strings.TrimSpace(raw), "/")
	if addr == "" {
		return "", fmt.Errorf("%s is not set (for example https://127.0.0.1:7070, or 127.0.0.1:7070)", envAddr)
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", envAddr, raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		return "", fmt.Errorf("%s %s: the operator API is HTTPS only; use https://%s (or just %s)", envAddr, raw, u.Host, u.Host)
	default:
		return "", fmt.Errorf("%s %s: scheme %q is not supported; the operator API is HTTPS only", envAddr, raw, u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %s: want https://HOST:PORT or HOST:PORT", envAddr, raw)
	}
	u.Scheme = "https"
	return u.String(), nil
}

// tlsConfig builds the client's TLS settings from the flags and the
// environment. warn receives the one-line warning printed when
// verification is off.
func tlsConfig(getenv func(string) string, o connOptions, warn io.Writer) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12} // TLS 1.3 is negotiated whenever the server has it
	skip := o.skipVerify
	if !skip {
		if v := strings.TrimSpace(getenv(envSkipVerify)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%q: want 1, true, 0 or false", envSkipVerify, v)
			}
			skip = b
		}
	}
	if skip {
		cfg.InsecureSkipVerify = true
		fmt.Fprintln(warn, "proximityctl: warning: TLS verification is off (--tls-skip-verify or PROXIMITY_SKIP_VERIFY): the server is not authenticated and the token can be read by anyone in between")
		return cfg, nil
	}
	file, source := o.caCert, "--ca-cert"
	if file == "" {
		file, source = getenv(envCACert), envCACert
	}
	if file == "" {
		return cfg, nil // the system roots alone
	}
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", source, file)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// newHTTPClient is an HTTP client with the given TLS settings whose every
// request ends within timeout. It follows redirects (at most 10), but
// never to anything other than https://.
func newHTTPClient(cfg *tls.Config, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("the server redirected to %s: refused, the operator API is HTTPS only", req.URL.Redacted())
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// explainTLS turns a failure to verify the server into an error that says
// what to do about it; other errors are returned as they are.
func explainTLS(base string, err error) error {
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		return err
	}
	var host x509.HostnameError
	if errors.As(cve.Err, &host) {
		return fmt.Errorf("cannot verify the server at %s: %w; use an address its certificate names (the server's --http-addr host or a --tls-san), or pass --tls-skip-verify", base, cve)
	}
	return fmt.Errorf("cannot verify the server at %s: %w; set %s=<data-dir>/ca.pem (the coordinator's CA certificate) or pass --tls-skip-verify", base, cve, envCACert)
}
