package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const fakeToken = "pxt_test"

// fakeCluster answers GET /api/v1/cluster like a one-server cluster, for a
// caller with fakeToken, and counts the requests that reach it.
func fakeCluster(hits *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"self":{"id":"s1"},"leader":{"id":"s1"},"members":[{"id":"s1","raft_addr":"127.0.0.1:7301","suffrage":"voter"}]}`))
	}
}

// caFile writes the test server's certificate, which is its own CA, as a
// PEM file as the coordinator writes <data-dir>/ca.pem.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCtlRefusesAnUnverifiedServer(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(fakeCluster(&hits))
	defer srv.Close()
	ca := caFile(t, srv)
	env := func(kv ...string) map[string]string {
		m := map[string]string{"PROXIMITY_ADDR": srv.URL, "PROXIMITY_TOKEN": fakeToken}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	// Without the CA the server is refused, and the token never reaches it.
	code, _, errs := ctlEnv(t, env(), "cluster")
	want := "cannot verify the server at " + srv.URL + ": tls: failed to verify certificate: x509: certificate signed by unknown authority; set PROXIMITY_CACERT=<data-dir>/ca.pem (the coordinator's CA certificate) or pass --tls-skip-verify"
	if code == 0 || !strings.Contains(errs, want) {
		t.Fatalf("no CA: exit %d, stderr %q; want non-zero and %q", code, errs, want)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("an unverified server got %d requests", n)
	}

	ok := []struct {
		name string
		env  map[string]string
		args []string
		warn bool
	}{
		{"PROXIMITY_CACERT", env("PROXIMITY_CACERT", ca), nil, false},
		{"--ca-cert", env(), []string{"--ca-cert", ca}, false},
		{"--ca-cert over a wrong PROXIMITY_CACERT", env("PROXIMITY_CACERT", "/nonexistent/ca.pem"), []string{"--ca-cert", ca}, false},
		{"address without a scheme", env("PROXIMITY_ADDR", srv.Listener.Addr().String(), "PROXIMITY_CACERT", ca), nil, false},
		{"--tls-skip-verify", env(), []string{"--tls-skip-verify"}, true},
		{"PROXIMITY_SKIP_VERIFY=1", env("PROXIMITY_SKIP_VERIFY", "1"), nil, true},
		{"PROXIMITY_SKIP_VERIFY=true", env("PROXIMITY_SKIP_VERIFY", "true"), nil, true},
	}
	for _, c := range ok {
		code, out, errs := ctlEnv(t, c.env, append([]string{"cluster"}, c.args...)...)
		if code != 0 || !strings.Contains(out, "voter (leader)") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", c.name, code, out, errs)
		}
		const warning = "proximityctl: warning: TLS verification is off (--tls-skip-verify or PROXIMITY_SKIP_VERIFY): the server is not authenticated and the token can be read by anyone in between\n"
		if c.warn && errs != warning || !c.warn && errs != "" {
			t.Fatalf("%s: stderr %q (warning expected: %v)", c.name, errs, c.warn)
		}
	}

	refused := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"PROXIMITY_SKIP_VERIFY=0", env("PROXIMITY_SKIP_VERIFY", "0"), "cannot verify the server"},
		{"PROXIMITY_SKIP_VERIFY=yes", env("PROXIMITY_SKIP_VERIFY", "yes"), `PROXIMITY_SKIP_VERIFY="yes": want 1, true, 0 or false`},
		{"a missing CA file", env("PROXIMITY_CACERT", "/nonexistent/ca.pem"), "PROXIMITY_CACERT: open /nonexistent/ca.pem"},
		// The certificate names 127.0.0.1, ::1 and example.com.
		{"a name the certificate does not hold", env("PROXIMITY_CACERT", ca, "PROXIMITY_ADDR", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)),
			"not localhost; use an address its certificate names (the server's --http-addr host or a --tls-san), or pass --tls-skip-verify"},
	}
	for _, c := range refused {
		if code, _, errs := ctlEnv(t, c.env, "cluster"); code == 0 || !strings.Contains(errs, c.want) {
			t.Fatalf("%s: exit %d, stderr %q; want non-zero and %q", c.name, code, errs, c.want)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := ctlEnv(t, env(), "cluster", "--ca-cert", empty); code == 0 || !strings.Contains(errs, "--ca-cert "+empty+": no PEM certificate in it") {
		t.Fatalf("a CA file without a certificate: exit %d, stderr %q", code, errs)
	}
}

func TestCtlRefusesPlainHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(fakeCluster(&hits))
	defer srv.Close()
	host := srv.Listener.Addr().String()
	for _, addr := range []string{srv.URL, "HTTP://" + host + "/"} {
		code, _, errs := ctlEnv(t, map[string]string{"PROXIMITY_ADDR": addr, "PROXIMITY_TOKEN": fakeToken}, "cluster", "--tls-skip-verify")
		want := "proximityctl: PROXIMITY_ADDR " + addr + ": the operator API is HTTPS only; use https://" + host + " (or just " + host + ")\n"
		if code != 2 || errs != want {
			t.Fatalf("%s: exit %d, stderr %q; want 2 and %q", addr, code, errs, want)
		}
	}
	if code, _, errs := ctlEnv(t, map[string]string{"PROXIMITY_ADDR": "ftp://" + host, "PROXIMITY_TOKEN": fakeToken}, "cluster"); code != 2 || !strings.Contains(errs, "HTTPS only") {
		t.Fatalf("ftp://: exit %d, stderr %q", code, errs)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the plain HTTP server got %d requests", n)
	}
}

// TestCtlFollowsRedirectsOnlyOverHTTPS: a redirect to https:// is followed
// as before; one to http:// is refused before the request is sent.
func TestCtlFollowsRedirectsOnlyOverHTTPS(t *testing.T) {
	var plainHits, hits atomic.Int32
	plain := httptest.NewServer(fakeCluster(&plainHits))
	defer plain.Close()
	answer := fakeCluster(&hits)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("to") {
		case "":
			answer(w, r)
		case "https":
			http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		case "http":
			http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	env := map[string]string{"PROXIMITY_ADDR": srv.URL, "PROXIMITY_TOKEN": fakeToken, "PROXIMITY_CACERT": caFile(t, srv)}

	c, err := newClient(func(k string) string { return env[k] }, connOptions{}, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out clusterInfo
	if err := c.do(t.Context(), "GET", "/api/v1/cluster?to=https", nil, &out); err != nil || out.Leader.ID != "s1" {
		t.Fatalf("redirect to https: %v %+v", err, out)
	}
	err = c.do(t.Context(), "GET", "/api/v1/cluster?to=http", nil, &out)
	if err == nil || !strings.Contains(err.Error(), "the server redirected to "+plain.URL+"/api/v1/cluster: refused, the operator API is HTTPS only") {
		t.Fatalf("redirect to http: %v", err)
	}
	if n := plainHits.Load(); n != 0 {
		t.Fatalf("the plain HTTP server got %d requests", n)
	}
}
