package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// idp is an OpenID provider in this process, on loopback (mockoidc),
// whose token endpoint can be made to hand out a forged ID token.
type idp struct {
	*mockoidc.MockOIDC
	// forge: "" honest; "tamper" changes the claims of a signed token;
	// "other-key" signs the token with a key the provider never
	// published.
	forge atomic.Value
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{MockOIDC: m}
	p.forge.Store("")
	other, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mode := p.forge.Load().(string)
			if mode == "" || r.URL.Path != mockoidc.TokenEndpoint {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
				if tok, ok := body["id_token"].(string); ok {
					body["id_token"] = forgeToken(t, tok, mode, other)
				}
			}
			out, _ := json.Marshal(body)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(out)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// forgeToken makes someone an admin in a token: by editing the signed
// claims ("tamper"), or by signing them with another key ("other-key").
func forgeToken(t *testing.T, tok, mode string, other *mockoidc.Keypair) string {
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Error(err)
		return tok
	}
	claims := jwt.MapClaims{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Error(err)
		return tok
	}
	claims["groups"] = []string{"proximity-admins"}
	if mode == "other-key" {
		signed, err := other.SignJWT(claims)
		if err != nil {
			t.Error(err)
			return tok
		}
		return signed
	}
	raw, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// audienceUser is a provider user whose ID token names another client.
type audienceUser struct {
	*mockoidc.MockUser
	aud string
}

func (u audienceUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	reg := *c.RegisteredClaims
	reg.Audience = jwt.ClaimStrings{u.aud}
	return u.MockUser.Claims(scope, &mockoidc.IDTokenClaims{Nonce: c.Nonce, RegisteredClaims: &reg})
}

func person(sub, name string, groups ...string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: sub, PreferredUsername: name, Email: name + "@example.com", EmailVerified: true, Groups: groups}
}

// configureOIDC points the cluster at the provider.
func (tc *testCluster) configureOIDC(p *idp, node int) {
	tc.t.Helper()
	body := fmt.Sprintf(`{"issuer":%q,"client_id":%q,"client_secret":%q,"redirect_url":%q,"scopes":["openid","profile","email","groups"],"role_claim":"groups","admin_values":["proximity-admins"]}`,
		p.Issuer(), p.ClientID, p.ClientSecret, tc.nodes[node].url()+"/api/v1/auth/oidc/callback")
	if st, _, b := tc.raw(node, "PUT", "/api/v1/settings/oidc", tc.token, body, nil); st != 200 {
		tc.t.Fatalf("PUT settings/oidc: %d %s", st, b)
	}
	// The login runs on the server it reaches: wait until every server
	// has applied the settings.
	deadline := time.Now().Add(10 * time.Second)
	b := tc.ssoBrowser()
	for i := range tc.nodes {
		for {
			resp, body := b.get(tc.nodes[i].url() + "/api/v1/auth/oidc/login")
			if resp.StatusCode == http.StatusFound {
				break
			}
			if time.Now().After(deadline) {
				tc.t.Fatalf("login on server %d: %d %s", i, resp.StatusCode, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// ssoBrowser does not follow redirects, so each step is seen.
type ssoBrowser struct {
	tc *testCluster
	c  *http.Client
}

func (tc *testCluster) ssoBrowser() *ssoBrowser {
	c := *tc.http
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &ssoBrowser{tc: tc, c: &c}
}

func (b *ssoBrowser) get(u string, cookies ...*http.Cookie) (*http.Response, []byte) {
	b.tc.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.tc.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ssoAttempt is one sign-in up to the provider's redirect back to us.
type ssoAttempt struct {
	callback string       // the URL the provider redirected to
	state    *http.Cookie // the proximity_oidc cookie
}

// start begins a sign-in on node loginNode, lets the provider sign user
// in, and returns the callback as it would reach node callbackNode.
func (b *ssoBrowser) start(p *idp, loginNode, callbackNode int, user mockoidc.User) ssoAttempt {
	t := b.tc.t
	t.Helper()
	resp, body := b.get(b.tc.nodes[loginNode].url() + "/api/v1/auth/oidc/login")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), p.AuthorizationEndpoint()+"?") {
		t.Fatalf("login redirects to %q, not the provider", resp.Header.Get("Location"))
	}
	q := loc.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Fatalf("login: %s %q is missing or short", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" ||
		!strings.Contains(q.Get("scope"), "openid") || q.Get("redirect_uri") != b.tc.nodes[0].url()+"/api/v1/auth/oidc/callback" {
		t.Fatalf("login: authorization request %v", q)
	}
	st := cookieNamed(resp, "proximity_oidc")
	if st == nil || !st.HttpOnly || !st.Secure || st.SameSite != http.SameSiteLaxMode || st.Path != "/api/v1/auth/oidc/" || st.MaxAge != 600 {
		t.Fatalf("login: state cookie %+v", st)
	}
	if strings.Contains(st.Value, q.Get("state")) || strings.Contains(st.Value, q.Get("nonce")) {
		t.Fatal("the state cookie holds the state or nonce in the clear")
	}
	p.QueueUser(user)
	resp, body = b.get(loc.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("provider authorize: %d %s", resp.StatusCode, body)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") != q.Get("state") {
		t.Fatalf("provider redirects to %q", resp.Header.Get("Location"))
	}
	cb.Host = strings.TrimPrefix(b.tc.nodes[callbackNode].url(), "https://")
	return ssoAttempt{callback: cb.String(), state: st}
}

// finish delivers the callback with the state cookie.
func (b *ssoBrowser) finish(a ssoAttempt) (*http.Response, []byte) {
	b.tc.t.Helper()
	return b.get(a.callback, a.state)
}

type meJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
	Token    struct {
		Kind string `json:"kind"`
	} `json:"token"`
}

// me calls GET /api/v1/me with a session cookie.
func (b *ssoBrowser) me(node int, session *http.Cookie) (int, meJSON) {
	b.tc.t.Helper()
	resp, body := b.get(b.tc.nodes[node].url()+"/api/v1/me", session)
	var m meJSON
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// signIn delivers the callback, checks that it signed in and returns the
// session cookie.
func (b *ssoBrowser) signIn(t *testing.T, a ssoAttempt) *http.Cookie {
	t.Helper()
	resp, body := b.finish(a)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	ses, csrf, st := cookieNamed(resp, "proximity_session"), cookieNamed(resp, "proximity_csrf"), cookieNamed(resp, "proximity_oidc")
	if ses == nil || !ses.HttpOnly || !ses.Secure || ses.SameSite != http.SameSiteStrictMode || csrf == nil {
		t.Fatalf("callback: session cookies %+v %+v", ses, csrf)
	}
	if st == nil || st.MaxAge >= 0 {
		t.Fatalf("callback: the state cookie is not cleared: %+v", st)
	}
	return ses
}

// refused checks a callback that must not sign in.
func refused(t *testing.T, what string, resp *http.Response, body []byte, status int, detail string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(string(body), detail) {
		t.Fatalf("%s: %d %s, want %d with %q", what, resp.StatusCode, body, status, detail)
	}
	if cookieNamed(resp, "proximity_session") != nil {
		t.Fatalf("%s: a session cookie was set", what)
	}
	if st := cookieNamed(resp, "proximity_oidc"); st == nil || st.MaxAge >= 0 {
		t.Fatalf("%s: the state cookie is not cleared", what)
	}
}

func (tc *testCluster) userNamed(name string) (meJSON, bool) {
	tc.t.Helper()
	var page struct{ Items []meJSON }
	if st, err := tc.call(0, "GET", "/api/v1/users?per_page=100", tc.token, nil, nil, &page); err != nil || st != 200 {
		tc.t.Fatalf("list users: %d %v", st, err)
	}
	for _, u := range page.Items {
		if u.Name == name {
			return u, true
		}
	}
	return meJSON{}, false
}

// TestOIDCSignIn runs single sign-on end to end against a provider in
// this process: the login on one server, the callback on others (a
// follower forwards it to the leader with its state cookie).
func TestOIDCSignIn(t *testing.T) {
	p := newIDP(t)
	tc := newTestCluster(t, 3)
	l := tc.waitLeader()
	f1, f2 := (l+1)%3, (l+2)%3
	// The settings are written through node 0: redirect_url names it.
	tc.configureOIDC(p, 0)
	b := tc.ssoBrowser()

	var aliceID string
	t.Run("good login creates the user", func(t *testing.T) {
		a := b.start(p, f1, f2, person("sub-alice", "alice", "staff"))
		ses := b.signIn(t, a)
		for i := range tc.nodes {
			st, m := b.me(i, ses)
			if st != 200 || m.Name != "alice" || m.Role != "user" || m.Token.Kind != "session" {
				t.Fatalf("GET /me on %d with the session: %d %+v", i, st, m)
			}
			aliceID = m.ID
		}
		// A second sign-in is the same user.
		ses2 := b.signIn(t, b.start(p, l, l, person("sub-alice", "alice-renamed", "staff")))
		if st, m := b.me(l, ses2); st != 200 || m.ID != aliceID || m.Name != "alice" {
			t.Fatalf("second sign-in: %d %+v, want user %s", st, m, aliceID)
		}
	})

	t.Run("replayed state", func(t *testing.T) {
		a := b.start(p, l, l, person("sub-alice", "alice", "staff"))
		b.signIn(t, a)
		resp, body := b.finish(a)
		refused(t, "the same callback and cookie again", resp, body, 401, "already used")
		// Replayed through a follower, which forwards to the leader.
		a.callback = strings.Replace(a.callback, strings.TrimPrefix(tc.nodes[l].url(), "https://"), strings.TrimPrefix(tc.nodes[f1].url(), "https://"), 1)
		resp, body = b.finish(a)
		refused(t, "the replay through a follower", resp, body, 401, "already used")
		// Without the cookie (another browser) the state is worthless.
		resp, body = b.get(b.start(p, l, l, person("sub-alice", "alice")).callback)
		refused(t, "a callback without the state cookie", resp, body, 401, "no sign-in is under way")
		// A state cookie of another sign-in does not fit.
		one, two := b.start(p, l, l, person("sub-alice", "alice")), b.start(p, l, l, person("sub-alice", "alice"))
		one.state = two.state
		resp, body = b.finish(one)
		refused(t, "another sign-in's cookie", resp, body, 401, "state does not match")
	})

	t.Run("admin_values make an admin, on every sign-in", func(t *testing.T) {
		ses := b.signIn(t, b.start(p, f2, f1, person("sub-carol", "carol", "staff", "proximity-admins")))
		if st, m := b.me(f2, ses); st != 200 || m.Role != "admin" {
			t.Fatalf("carol: %d %+v, want admin", st, m)
		}
		if st, _, body := tc.raw(0, "GET", "/api/v1/settings/oidc", "", "", map[string]string{"Cookie": "proximity_session=" + ses.Value}); st != 200 {
			t.Fatalf("carol's session on an admin route: %d %s", st, body)
		}
		// The provider drops her from the group: the next sign-in
		// makes her a user.
		ses = b.signIn(t, b.start(p, l, l, person("sub-carol", "carol", "staff")))
		if st, m := b.me(l, ses); st != 200 || m.Role != "user" {
			t.Fatalf("carol after the group change: %d %+v, want user", st, m)
		}
	})

	t.Run("bad signature", func(t *testing.T) {
		for _, mode := range []string{"tamper", "other-key"} {
			p.forge.Store(mode)
			resp, body := b.finish(b.start(p, l, l, person("sub-mallory", "mallory", "staff")))
			p.forge.Store("")
			refused(t, mode, resp, body, 401, "ID token failed verification")
			if _, ok := tc.userNamed("mallory"); ok {
				t.Fatalf("%s: a user was created", mode)
			}
		}
	})

	t.Run("wrong audience", func(t *testing.T) {
		resp, body := b.finish(b.start(p, l, l, audienceUser{person("sub-eve", "eve", "proximity-admins"), "another-client"}))
		refused(t, "wrong audience", resp, body, 401, "audience")
		if _, ok := tc.userNamed("eve"); ok {
			t.Fatal("a user was created")
		}
	})

	t.Run("disabled user and taken name", func(t *testing.T) {
		if st, _, body := tc.raw(0, "PATCH", "/api/v1/users/"+aliceID, tc.token, `{"disabled":true}`, nil); st != 200 {
			t.Fatalf("disable alice: %d %s", st, body)
		}
		resp, body := b.finish(b.start(p, l, l, person("sub-alice", "alice", "staff")))
		refused(t, "a disabled user", resp, body, 403, "disabled")
		// A local user's name is not taken over by a provider identity.
		tc.createUser("dave", "user")
		resp, body = b.finish(b.start(p, l, l, person("sub-dave", "dave", "proximity-admins")))
		refused(t, "a local user's name", resp, body, 409, "belongs to another account")
		// A name that cannot be a user name is refused clearly.
		resp, body = b.finish(b.start(p, l, l, person("sub-space", "has space")))
		refused(t, "an invalid name", resp, body, 403, "cannot be a user name")
	})
}

// TestOIDCSettings checks the settings' validation, that the client
// secret is never shown, and that no file of any server's data directory
// holds it, in the clear or in base64.
func TestOIDCSettings(t *testing.T) {
	p := newIDP(t)
	tc := newTestCluster(t, 1)
	cb := tc.nodes[0].url() + "/api/v1/auth/oidc/callback"
	if resp, body := tc.ssoBrowser().get(tc.nodes[0].url() + "/api/v1/auth/oidc/login"); resp.StatusCode != 404 || !strings.Contains(string(body), "not configured") {
		t.Fatalf("login before SSO is configured: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []struct{ body, detail string }{
		{`{"issuer":"http://idp.example.com/oidc","client_id":"c","client_secret":"s","redirect_url":"` + cb + `"}`, "issuer"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","client_secret":"s","redirect_url":"http://x.example/api/v1/auth/oidc/callback"}`, "redirect_url"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","client_secret":"s","redirect_url":"https://x.example/elsewhere"}`, "redirect_url"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","client_secret":"s","redirect_url":"` + cb + `","scopes":["profile"]}`, "openid"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","redirect_url":"` + cb + `"}`, "client_secret"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","client_secret":"s","redirect_url":"` + cb + `","admin_values":["x"]}`, "role_claim"},
		{`{"issuer":"` + p.Issuer() + `","client_id":"c","client_secret":"s","redirect_url":"` + cb + `","unknown":1}`, "unknown"},
	} {
		st, h, body := tc.raw(0, "PUT", "/api/v1/settings/oidc", tc.token, bad.body, nil)
		if doc := assertProblem(t, st, h, body, 400); !strings.Contains(doc.Detail, bad.detail) {
			t.Errorf("PUT %s: %q does not name %s", bad.body, doc.Detail, bad.detail)
		}
	}
	tc.configureOIDC(p, 0)
	var got map[string]any
	check := func(what string) {
		t.Helper()
		st, _, body := tc.raw(0, "GET", "/api/v1/settings/oidc", tc.token, "", nil)
		if st != 200 || strings.Contains(string(body), p.ClientSecret) || strings.Contains(string(body), `"client_secret"`) {
			t.Fatalf("%s: GET: %d %s", what, st, body)
		}
		got = nil
		_ = json.Unmarshal(body, &got)
		if got["client_secret_set"] != true || got["issuer"] != p.Issuer() || got["username_claim"] != "preferred_username" {
			t.Fatalf("%s: GET %s", what, body)
		}
	}
	check("after PUT")
	// A PUT without the secret keeps it for the same issuer and client.
	got["role_claim"], got["admin_values"] = "", []string{}
	delete(got, "client_secret_set")
	raw, _ := json.Marshal(got)
	if st, _, body := tc.raw(0, "PUT", "/api/v1/settings/oidc", tc.token, string(raw), nil); st != 200 {
		t.Fatalf("PUT without the secret: %d %s", st, body)
	}
	check("after a PUT without the secret")
	// The sign-in still works: the kept secret opens.
	b := tc.ssoBrowser()
	ses := b.signIn(t, b.start(p, 0, 0, person("sub-frank", "frank")))
	if st, m := b.me(0, ses); st != 200 || m.Name != "frank" || m.Role != "user" {
		t.Fatalf("frank: %d %+v", st, m)
	}

	if err := tc.nodes[0].server().Cluster().Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{
		"raw":            []byte(p.ClientSecret),
		"base64":         []byte(base64.StdEncoding.EncodeToString([]byte(p.ClientSecret))),
		"base64 url":     []byte(base64.RawURLEncoding.EncodeToString([]byte(p.ClientSecret))),
		"base64 no tail": []byte(strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(p.ClientSecret)), "=")),
	}
	if files := tc.scanDataDirs("the OIDC client secret", needles); files < 3 {
		t.Fatalf("scanned only %d files", files)
	}
	// An empty issuer alone turns single sign-on off.
	if st, _, body := tc.raw(0, "PUT", "/api/v1/settings/oidc", tc.token, `{"issuer":""}`, nil); st != 200 {
		t.Fatalf("turn off: %d %s", st, body)
	}
	if resp, body := tc.ssoBrowser().get(tc.nodes[0].url() + "/api/v1/auth/oidc/login"); resp.StatusCode != 404 {
		t.Fatalf("login after SSO is off: %d %s", resp.StatusCode, body)
	}
	// A provider that cannot be reached is a 503 that names no address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String() + "/oidc"
	ln.Close()
	body := fmt.Sprintf(`{"issuer":%q,"client_id":"c","client_secret":"s","redirect_url":%q}`, gone, cb)
	if st, _, b := tc.raw(0, "PUT", "/api/v1/settings/oidc", tc.token, body, nil); st != 200 {
		t.Fatalf("PUT an unreachable issuer: %d %s", st, b)
	}
	for i := 0; i < 2; i++ { // the second answer comes from the failure remembered
		resp, b := tc.ssoBrowser().get(tc.nodes[0].url() + "/api/v1/auth/oidc/login")
		if resp.StatusCode != 503 || !strings.Contains(string(b), "discovery document") || strings.Contains(string(b), ln.Addr().String()) {
			t.Fatalf("login with the provider down: %d %s", resp.StatusCode, b)
		}
	}
}

// TestOIDCClientSecretResealedOnKeyRotation rotates the cluster key: the
// leader seals the client secret under the new key, and once the old key
// is gone, single sign-on still works.
func TestOIDCClientSecretResealedOnKeyRotation(t *testing.T) {
	p := newIDP(t)
	tc := newTestCluster(t, 1)
	tc.configureOIDC(p, 0)
	oldText, err := os.ReadFile(tc.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newFile := filepath.Join(tc.dir, "new.key")
	if _, err := cluster.WriteNewKeyFile(newFile); err != nil {
		t.Fatal(err)
	}
	newText, _ := os.ReadFile(newFile)
	reload := func(parts ...[]byte) {
		t.Helper()
		if err := os.WriteFile(tc.keyFile, bytes.Join(parts, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := tc.nodes[0].server().Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload(oldText, newText) // install
	reload(newText, oldText) // use
	cl := tc.nodes[0].server().Cluster()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var keyID, caKeyID string
		cl.FSM().Read(func(s *fsm.State) {
			if o, ok := s.OIDCSettings(); ok && o.ClientSecret != nil {
				keyID = o.ClientSecret.KeyID
			}
			if s.CA != nil && s.CA.Key != nil {
				caKeyID = s.CA.Key.KeyID
			}
		})
		// The leader re-seals secret by secret: the old key may go once
		// the client secret and the CA key (what a reload checks) are
		// both under the new.
		if keyID == cl.Sealer().PrimaryID() && caKeyID == keyID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client secret is still sealed by %q, the CA key by %q", keyID, caKeyID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reload(newText) // remove
	b := tc.ssoBrowser()
	ses := b.signIn(t, b.start(p, 0, 0, person("sub-grace", "grace")))
	if st, m := b.me(0, ses); st != 200 || m.Name != "grace" {
		t.Fatalf("grace after the rotation: %d %+v", st, m)
	}
}
