package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
)

// TestLoginAsksForTheOneTimeCode: for a user with two-factor on, login
// asks for the code when the server wants one (a recovery code here) and
// refuses a wrong --otp.
func TestLoginAsksForTheOneTimeCode(t *testing.T) {
	ts, admin := startServer(t)
	pem, err := os.ReadFile(ts.caCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(token, method, path string, in, out any) {
		t.Helper()
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest(method, ts.addr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %v %v", method, path, resp, err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
	}
	var u struct{ ID string }
	call(admin, "POST", "/api/v1/users", map[string]string{"name": "frank", "role": "user"}, &u)
	const pw = "frank's long password"
	call(admin, "PUT", "/api/v1/users/"+u.ID+"/password", map[string]string{"password": pw}, nil)
	var tok struct{ Token string }
	call(admin, "POST", "/api/v1/users/"+u.ID+"/tokens", map[string]string{}, &tok)
	var enrol struct{ Secret string }
	call(tok.Token, "POST", "/api/v1/me/totp", nil, &enrol)
	code, _ := auth.TOTPCode(enrol.Secret, time.Now())
	var on struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	call(tok.Token, "POST", "/api/v1/me/totp/verify", map[string]string{"code": code}, &on)

	env := map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_CACERT": ts.caCert, "XDG_CONFIG_HOME": t.TempDir()}
	if c, _, errs := ctlIn(t, env, pw+"\n", "login", "--name", "frank", "--otp", "123456x"); c == 0 || !strings.Contains(errs, "401") {
		t.Fatalf("a wrong --otp: %d %s", c, errs)
	}
	c, _, errs := ctlIn(t, env, pw+"\n"+on.RecoveryCodes[0]+"\n", "login", "--name", "frank")
	if c != 0 {
		t.Fatalf("login with a recovery code at the prompt: %d %s", c, errs)
	}
	if c, out, errs := ctlEnv(t, map[string]string{"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]}, "me"); c != 0 || !strings.Contains(out, "frank") {
		t.Fatalf("me with the session: %d %s %s", c, out, errs)
	}
}
