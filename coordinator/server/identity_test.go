package server

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// createUser makes a user and returns its ID.
func (tc *testCluster) createUser(name, role string) string {
	tc.t.Helper()
	var u struct{ ID string }
	if st, err := tc.call(0, "POST", "/api/v1/users", tc.token, map[string]any{"name": name, "role": role}, nil, &u); err != nil || st != 201 {
		tc.t.Fatalf("create user %s: %d %v", name, st, err)
	}
	return u.ID
}

// setPassword sets a user's password as the admin.
func (tc *testCluster) setPassword(uid, pw string) {
	tc.t.Helper()
	if st, _, b := tc.raw(0, "PUT", "/api/v1/users/"+uid+"/password", tc.token, fmt.Sprintf(`{"password":%q}`, pw), nil); st != 204 {
		tc.t.Fatalf("set password: %d %s", st, b)
	}
}

// from is an HTTPS client of the cluster whose connections come from the
// loopback address ip, standing for a client elsewhere.
func (tc *testCluster) from(ip string) *http.Client {
	tr := tc.http.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}).DialContext
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

type browser struct {
	tc      *testCluster
	client  *http.Client
	session *http.Cookie
	csrf    *http.Cookie
}

// login signs in as a browser would and keeps the cookies.
func (tc *testCluster) login(client *http.Client, node int, name, pw string) (*browser, int, http.Header, []byte) {
	tc.t.Helper()
	req, _ := http.NewRequest("POST", tc.nodes[node].url()+"/api/v1/login", strings.NewReader(fmt.Sprintf(`{"name":%q,"password":%q}`, name, pw)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	b := &browser{tc: tc, client: client}
	for _, c := range resp.Cookies() {
		switch c.Name {
		case "proximity_session":
			b.session = c
		case "proximity_csrf":
			b.csrf = c
		}
	}
	return b, resp.StatusCode, resp.Header, body
}

func (b *browser) do(node int, method, path, body string, hdr map[string]string) (int, []byte) {
	b.tc.t.Helper()
	req, _ := http.NewRequest(method, b.tc.nodes[node].url()+path, strings.NewReader(body))
	if b.session != nil {
		req.AddCookie(b.session)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestPasswordLoginSessionCSRFAndLogout: a person signs in with a name
// and a password and gets the session and CSRF cookies; an unsafe request
// with the cookie needs the CSRF header and the API's own origin; logout
// ends the session on every server.
func TestPasswordLoginSessionCSRFAndLogout(t *testing.T) {
	tc := newTestCluster(t, 3)
	uid := tc.createUser("alice", "user")
	const pw = "correct horse battery staple"
	// Password rules and who may set one.
	if st, _, b := tc.raw(0, "PUT", "/api/v1/users/"+uid+"/password", tc.token, `{"password":"short"}`, nil); st != 400 {
		t.Fatalf("a short password: %d %s", st, b)
	}
	tc.setPassword(uid, pw)
	var u struct{ PasswordHash string }
	tc.nodes[0].server().Cluster().FSM().Read(func(s *fsm.State) { x, _ := s.User(uid); u.PasswordHash = x.PasswordHash })
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$") || strings.Contains(u.PasswordHash, pw) {
		t.Fatalf("stored %q", u.PasswordHash)
	}

	if _, st, _, _ := tc.login(tc.http, 1, "alice", "wrong password!!"); st != 401 {
		t.Fatalf("a wrong password: %d", st)
	}
	if _, st, _, _ := tc.login(tc.http, 1, "nobody", pw); st != 401 {
		t.Fatalf("an unknown name: %d", st)
	}
	br, st, hdr, body := tc.login(tc.http, 1, "ALICE", pw)
	if st != 200 || br.session == nil || br.csrf == nil {
		t.Fatalf("login: %d %s", st, body)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		User      struct{ ID, Name string }
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token != br.session.Value || out.User.ID != uid {
		t.Fatalf("login answer %s: %v", body, err)
	}
	if d := time.Until(out.ExpiresAt); d < 11*time.Hour || d > 13*time.Hour {
		t.Fatalf("session expires in %s, want 12h", d)
	}
	sc := strings.Join(hdr.Values("Set-Cookie"), "\n")
	for _, want := range []string{"proximity_session=", "HttpOnly", "Secure", "SameSite=Strict", "Path=/", "proximity_csrf="} {
		if !strings.Contains(sc, want) {
			t.Fatalf("Set-Cookie lacks %s: %s", want, sc)
		}
	}
	if strings.Contains(strings.SplitN(sc, "proximity_csrf=", 2)[1], "HttpOnly") {
		t.Fatal("the CSRF cookie must be readable by the page")
	}

	// Reads with the cookie work on every server.
	for i := range tc.nodes {
		if st, b := br.do(i, "GET", "/api/v1/me", "", nil); st != 200 || !strings.Contains(string(b), `"name":"alice"`) {
			t.Fatalf("me via c%d: %d %s", i+1, st, b)
		}
	}
	// An unsafe request with the cookie alone, with a wrong token, or from
	// another origin is refused; with the header it passes.
	body2 := `{"name":"cli"}`
	path := "/api/v1/users/" + uid + "/tokens"
	for name, h := range map[string]map[string]string{
		"no header":      nil,
		"wrong header":   {"X-CSRF-Token": "nope"},
		"another origin": {"X-CSRF-Token": br.csrf.Value, "Origin": "https://evil.example"},
	} {
		if st, b := br.do(2, "POST", path, body2, h); st != 403 {
			t.Fatalf("%s: %d %s", name, st, b)
		}
	}
	if st, b := br.do(2, "POST", path, body2, map[string]string{"X-CSRF-Token": br.csrf.Value, "Origin": tc.nodes[2].url()}); st != 201 {
		t.Fatalf("with the CSRF header: %d %s", st, b)
	}
	// A bearer token needs no CSRF header.
	if st, _, b := tc.raw(0, "POST", path, out.Token, body2, nil); st != 201 {
		t.Fatalf("the session as a bearer token: %d %s", st, b)
	}

	// A user changes its own password only with the current one; the
	// others of its sessions end, this one stays.
	other, st, _, _ := tc.login(tc.http, 0, "alice", pw)
	if st != 200 {
		t.Fatal(st)
	}
	csrf := map[string]string{"X-CSRF-Token": br.csrf.Value}
	if st, b := br.do(0, "PUT", "/api/v1/users/"+uid+"/password", `{"password":"another long password"}`, csrf); st != 403 {
		t.Fatalf("own password without the current one: %d %s", st, b)
	}
	if st, b := br.do(0, "PUT", "/api/v1/users/"+uid+"/password", fmt.Sprintf(`{"password":"another long password","current_password":%q}`, pw), csrf); st != 204 {
		t.Fatalf("own password: %d %s", st, b)
	}
	if st, _ := other.do(1, "GET", "/api/v1/me", "", nil); st != 401 {
		t.Fatalf("the other session after a password change: %d", st)
	}
	if st, _ := br.do(1, "GET", "/api/v1/me", "", nil); st != 200 {
		t.Fatalf("the session that changed the password: %d", st)
	}

	// The audit log holds the logins, with the session that one made and
	// without any secret.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var audit struct{ Items []fsm.AuditRecord }
		if st, err := tc.call(0, "GET", "/api/v1/audit?per_page=100", tc.token, nil, nil, &audit); err != nil || st != 200 {
			t.Fatalf("audit: %d %v", st, err)
		}
		var ok, failed bool
		for _, r := range audit.Items {
			if r.Route == "POST /api/v1/login" && r.Status == 200 && r.Actor.Name == "alice" && r.Actor.SessionID != "" {
				ok = true
			}
			if r.Route == "POST /api/v1/login" && r.Status == 401 {
				failed = true
			}
		}
		raw, _ := json.Marshal(audit)
		for _, secret := range []string{pw, out.Token, br.csrf.Value} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("the audit log holds a secret: %s", secret)
			}
		}
		if ok && failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of the logins (ok %v, failed %v)", ok, failed)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Logout ends the session everywhere.
	if st, b := br.do(1, "POST", "/api/v1/logout", "", csrf); st != 204 {
		t.Fatalf("logout: %d %s", st, b)
	}
	for i := range tc.nodes {
		if st, _ := br.do(i, "GET", "/api/v1/me", "", nil); st != 401 {
			t.Fatalf("c%d after logout: %d", i+1, st)
		}
	}
}

// TestRevokedTokenIsRefusedByEveryServer: a token revoked through one
// server is refused by every server on the next request, on local routes
// as on leader routes; tokens can be named, expire, and are listed
// without their secrets.
func TestRevokedTokenIsRefusedByEveryServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	uid := tc.createUser("carol", "user")
	var tok struct {
		ID, Token string
		ExpiresAt time.Time `json:"expires_at"`
	}
	if st, err := tc.call(1, "POST", "/api/v1/users/"+uid+"/tokens", tc.token, map[string]any{"name": "ci", "ttl": "720h"}, nil, &tok); err != nil || st != 201 {
		t.Fatalf("create: %d %v", st, err)
	}
	if d := time.Until(tok.ExpiresAt); d < 719*time.Hour || d > 721*time.Hour {
		t.Fatalf("expires in %s", d)
	}
	for i := range tc.nodes {
		for _, p := range []string{"/api/v1/catalog", "/api/v1/me"} {
			if st, _, b := tc.raw(i, "GET", p, tok.Token, "", nil); st != 200 {
				t.Fatalf("c%d %s: %d %s", i+1, p, st, b)
			}
		}
	}
	var list struct {
		Items []map[string]any
	}
	if st, err := tc.call(2, "GET", "/api/v1/users/"+uid+"/tokens", tok.Token, nil, nil, &list); err != nil || st != 200 || len(list.Items) != 1 {
		t.Fatalf("list: %d %v %+v", st, err, list)
	}
	item := list.Items[0]
	if item["name"] != "ci" || item["kind"] != "api" || item["current"] != true || item["last_used_at"] == nil || item["expires_at"] == nil {
		t.Fatalf("listed %+v", item)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), tok.Token) || strings.Contains(string(raw), "hash") {
		t.Fatalf("the list shows a secret: %s", raw)
	}
	if st, _, b := tc.raw(0, "DELETE", "/api/v1/users/"+uid+"/tokens/"+tok.ID, tok.Token, "", nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	for i := range tc.nodes {
		for _, p := range []string{"/api/v1/catalog", "/api/v1/me"} {
			if st, _, _ := tc.raw(i, "GET", p, tok.Token, "", nil); st != 401 {
				t.Fatalf("c%d %s after the revocation: %d", i+1, p, st)
			}
		}
	}
	if st, _, _ := tc.raw(0, "POST", "/api/v1/users/"+uid+"/tokens", tc.token, `{"ttl":"1s"}`, nil); st != 400 {
		t.Fatalf("a ttl below a minute: %d", st)
	}
}

// TestDisabledUserIsLockedOutAndDeletionWaitsForItsApps: disabling a
// user ends its tokens and sessions at once on every server and for good;
// the last admin cannot be disabled; deleting a user that owns apps is
// 409 naming them.
func TestDisabledUserIsLockedOutAndDeletionWaitsForItsApps(t *testing.T) {
	tc, _, tok := appCluster(t)
	var me struct{ ID string }
	if st, err := tc.call(0, "GET", "/api/v1/me", tok["alice"], nil, nil, &me); err != nil || st != 200 {
		t.Fatalf("me: %d %v", st, err)
	}
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "owned"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	tc.setPassword(me.ID, "alice's long password")
	br, st, _, _ := tc.login(tc.http, 0, "alice", "alice's long password")
	if st != 200 {
		t.Fatal(st)
	}
	if st, _, b := tc.raw(0, "DELETE", "/api/v1/users/"+me.ID, tc.token, "", nil); st != 409 || !strings.Contains(string(b), a.ID) {
		t.Fatalf("delete a user with apps: %d %s", st, b)
	}
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/users/"+me.ID, tc.token, `{"disabled":true}`, nil); st != 200 || !strings.Contains(string(b), `"disabled":true`) {
		t.Fatalf("disable: %d %s", st, b)
	}
	for i := range tc.nodes {
		if st, _, _ := tc.raw(i, "GET", "/api/v1/apps", tok["alice"], "", nil); st != 401 {
			t.Fatalf("a disabled user's token: %d", st)
		}
		if st, _ := br.do(i, "GET", "/api/v1/me", "", nil); st != 401 {
			t.Fatalf("a disabled user's session: %d", st)
		}
	}
	if _, st, _, _ := tc.login(tc.http, 0, "alice", "alice's long password"); st != 401 {
		t.Fatalf("a disabled user logs in: %d", st)
	}
	// Enabling again does not bring the old tokens back.
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/users/"+me.ID, tc.token, `{"disabled":false}`, nil); st != 200 {
		t.Fatalf("enable: %d %s", st, b)
	}
	if st, _, _ := tc.raw(0, "GET", "/api/v1/apps", tok["alice"], "", nil); st != 401 {
		t.Fatalf("an old token after enabling: %d", st)
	}
	// The last admin stays.
	var admin struct{ ID string }
	if st, err := tc.call(0, "GET", "/api/v1/me", tc.token, nil, nil, &admin); err != nil || st != 200 {
		t.Fatal(st, err)
	}
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/users/"+admin.ID, tc.token, `{"disabled":true}`, nil); st != 409 {
		t.Fatalf("disable the last admin: %d %s", st, b)
	}
	if st, _, b := tc.raw(0, "PATCH", "/api/v1/users/"+admin.ID, tc.token, `{"role":"user"}`, nil); st != 409 {
		t.Fatalf("demote the last admin: %d %s", st, b)
	}
	// Without apps, a user can be deleted.
	bob := tc.createUser("bobby", "user")
	if st, _, b := tc.raw(0, "DELETE", "/api/v1/users/"+bob, tc.token, "", nil); st != 204 {
		t.Fatalf("delete: %d %s", st, b)
	}
	if st, _, _ := tc.raw(0, "GET", "/api/v1/users/"+bob, tc.token, "", nil); st != 404 {
		t.Fatalf("a deleted user: %d", st)
	}
}

// TestLoginThrottledPerAddressAndName: failed logins for a name from one
// address are throttled (429 with Retry-After), even with the right
// password then; the same name from another address still signs in, and a
// valid token from the throttled address keeps working.
func TestLoginThrottledPerAddressAndName(t *testing.T) {
	tc := newTestCluster(t, 1)
	uid := tc.createUser("dave", "user")
	const pw = "dave's long password"
	tc.setPassword(uid, pw)
	attacker, elsewhere := tc.from("127.0.0.77"), tc.from("127.0.0.88")
	statuses := map[int]int{}
	var retry string
	for i := 0; i < 12; i++ {
		_, st, h, _ := tc.login(attacker, 0, "dave", fmt.Sprintf("guess number %d!", i))
		statuses[st]++
		if st == 429 {
			retry = h.Get("Retry-After")
		}
	}
	if statuses[401] != 5 || statuses[429] != 7 || retry == "" {
		t.Fatalf("12 guesses: %v (Retry-After %q), want 5 × 401 then 429", statuses, retry)
	}
	if _, st, _, _ := tc.login(attacker, 0, "dave", pw); st != 429 {
		t.Fatalf("the right password from the throttled address: %d", st)
	}
	if _, st, _, _ := tc.login(elsewhere, 0, "dave", pw); st != 200 {
		t.Fatalf("dave from elsewhere: %d", st)
	}
	req, _ := http.NewRequest("GET", tc.nodes[0].url()+"/api/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+tc.token)
	resp, err := attacker.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a valid token from the throttled address: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestTwoFactorLogin: once a user turns TOTP on with a verified code,
// login needs a one-time code: each code works once, each recovery code
// once; an admin can reset it.
func TestTwoFactorLogin(t *testing.T) {
	tc := newTestCluster(t, 3)
	uid := tc.createUser("erin", "user")
	const pw = "erin's long password"
	tc.setPassword(uid, pw)
	tok := tc.userTokenFor(uid)
	var enrol struct{ URI, Secret string }
	if st, err := tc.call(1, "POST", "/api/v1/me/totp", tok, nil, nil, &enrol); err != nil || st != 200 || !strings.HasPrefix(enrol.URI, "otpauth://totp/") {
		t.Fatalf("enrol: %d %v %+v", st, err, enrol)
	}
	// Until verified, login needs no code.
	if _, st, _, _ := tc.login(tc.http, 0, "erin", pw); st != 200 {
		t.Fatalf("login before verification: %d", st)
	}
	if st, _, _ := tc.raw(0, "POST", "/api/v1/me/totp/verify", tok, `{"code":"000000"}`, nil); st != 400 {
		t.Fatalf("a wrong code verifies: %d", st)
	}
	code, _ := auth.TOTPCode(enrol.Secret, tc.clock.now())
	var on struct {
		Enabled       bool
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if st, err := tc.call(2, "POST", "/api/v1/me/totp/verify", tok, map[string]string{"code": code}, nil, &on); err != nil || st != 200 || !on.Enabled || len(on.RecoveryCodes) != 10 {
		t.Fatalf("verify: %d %v %+v", st, err, on)
	}
	loginOTP := func(node int, otp string) (int, []byte) {
		t.Helper()
		st, _, b := tc.raw(node, "POST", "/api/v1/login", "", fmt.Sprintf(`{"name":"erin","password":%q,"otp":%q}`, pw, otp), nil)
		return st, b
	}
	if st, b := loginOTP(0, ""); st != 401 || !strings.Contains(string(b), `"type":"urn:proximity:problem:otp-required"`) {
		t.Fatalf("login without a code: %d %s", st, b)
	}
	// The code that turned it on was spent; the next step's works once.
	tc.clock.advance(t, 30*time.Second)
	next, _ := auth.TOTPCode(enrol.Secret, tc.clock.now())
	if st, b := loginOTP(0, code); st != 401 {
		t.Fatalf("the verification's code again: %d %s", st, b)
	}
	if st, b := loginOTP(1, next); st != 200 {
		t.Fatalf("login with a code: %d %s", st, b)
	}
	if st, b := loginOTP(2, next); st != 401 {
		t.Fatalf("the same code on another server: %d %s", st, b)
	}
	rc := on.RecoveryCodes[3]
	if st, b := loginOTP(0, rc); st != 200 {
		t.Fatalf("a recovery code: %d %s", st, b)
	}
	if st, b := loginOTP(1, rc); st != 401 {
		t.Fatalf("a recovery code twice: %d %s", st, b)
	}
	// The secret is sealed in the state.
	tc.nodes[0].server().Cluster().FSM().Read(func(s *fsm.State) {
		u, _ := s.User(uid)
		if u.TOTP == nil || u.TOTP.Secret == nil || strings.Contains(string(u.TOTP.Secret.Data), enrol.Secret) {
			t.Errorf("the TOTP secret is not sealed: %+v", u.TOTP)
		}
	})
	if st, _, b := tc.raw(0, "DELETE", "/api/v1/users/"+uid+"/totp", tc.token, "", nil); st != 204 {
		t.Fatalf("reset: %d %s", st, b)
	}
	if st, b := loginOTP(2, ""); st != 200 {
		t.Fatalf("login after the reset: %d %s", st, b)
	}
}

// userTokenFor makes an API token for a user, as the admin.
func (tc *testCluster) userTokenFor(uid string) string {
	tc.t.Helper()
	var tok struct{ Token string }
	if st, err := tc.call(0, "POST", "/api/v1/users/"+uid+"/tokens", tc.token, nil, nil, &tok); err != nil || st != 201 {
		tc.t.Fatalf("token: %d %v", st, err)
	}
	return tok.Token
}
