package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Single sign-on with OpenID Connect (authorization code flow with PKCE).
//
// GET /api/v1/auth/oidc/login runs on any server: it makes a state, a
// nonce and a PKCE verifier, seals them under the cluster key into the
// proximity_oidc cookie (HttpOnly, Secure, SameSite=Lax, 10 minutes,
// scoped to /api/v1/auth/oidc/) and redirects to the provider. No server
// keeps anything, so the callback may reach any server of the cluster.
//
// GET /api/v1/auth/oidc/callback runs on the leader (a follower forwards
// it with that one cookie). It clears the cookie, opens it, checks the
// state, refuses a state it has seen (in memory, until the state
// expires), exchanges the code with the verifier, verifies the ID token
// (signature from the provider's keys, issuer, audience, expiry, nonce),
// and, in one command, finds or creates the user bound to the provider's
// subject, sets its role and creates the session. The command's request
// ID is derived from the state, so a state replayed after a change of
// leader is refused by the state machine's deduplication while the
// entry is in its window; the provider also accepts a code once.
const (
	oidcStateCookie  = "proximity_oidc"
	oidcCookiePath   = "/api/v1/auth/oidc/"
	oidcStatePurpose = "oidc-state"
	oidcStateTTL     = 10 * time.Minute
	// oidcHTTPTimeout bounds every call to the provider: discovery, the
	// code exchange, the key set.
	oidcHTTPTimeout = 10 * time.Second
	// oidcProviderTTL is how long a provider's discovery document is
	// kept; its keys are refetched when a token names an unknown one.
	oidcProviderTTL = time.Hour
	// oidcRetryAfter is how long a failed discovery is remembered, so a
	// provider that is down is not asked again for every sign-in.
	oidcRetryAfter = 5 * time.Second
	// oidcUsedMax bounds the used-state set.
	oidcUsedMax = 100_000
	// oidcSuccessURL is where a browser lands once signed in: the UI.
	oidcSuccessURL = "/"
)

// oidcClient is the API's provider cache and used-state set. Its zero
// value is ready.
type oidcClient struct {
	mu        sync.Mutex
	providers map[string]cachedProvider
	used      map[string]time.Time // state hash → when it expires
	client    *http.Client
	// fetching is held while a discovery document is fetched, so that
	// sign-ins arriving together fetch it once.
	fetching sync.Mutex
}

type cachedProvider struct {
	p   *oidc.Provider // nil: the fetch at failed with err
	at  time.Time
	err error
}

func (c *oidcClient) httpClient() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = oidcHTTPTimeout
		c.client = &http.Client{Timeout: oidcHTTPTimeout, Transport: tr}
	}
	return c.client
}

// provider returns the issuer's provider, fetching its discovery document
// when it is not cached or is old.
func (c *oidcClient) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	hc := c.httpClient()
	cached := func() (*oidc.Provider, bool, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		cp, ok := c.providers[issuer]
		switch {
		case ok && cp.p != nil && time.Since(cp.at) < oidcProviderTTL:
			return cp.p, true, nil
		case ok && cp.p == nil && time.Since(cp.at) < oidcRetryAfter:
			return nil, true, cp.err
		}
		return nil, false, nil
	}
	if p, ok, err := cached(); ok {
		return p, err
	}
	c.fetching.Lock()
	defer c.fetching.Unlock()
	if p, ok, err := cached(); ok {
		return p, err
	}
	dctx, cancel := context.WithTimeout(ctx, oidcHTTPTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(dctx, hc), issuer)
	if err != nil {
		err = problem.Wrap(problem.Unavailable, err, "the identity provider's discovery document could not be read; try again later")
	}
	c.mu.Lock()
	if c.providers == nil {
		c.providers = map[string]cachedProvider{}
	}
	c.providers[issuer] = cachedProvider{p: p, at: time.Now(), err: err}
	c.mu.Unlock()
	return p, err
}

// forget drops a cached provider (the settings changed).
func (c *oidcClient) forget(issuer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.providers, issuer)
}

// use records a state as used; it reports false if it already was.
func (c *oidcClient) use(key string, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used == nil {
		c.used = map[string]time.Time{}
	}
	if exp, ok := c.used[key]; ok && now.Before(exp) {
		return false
	}
	if len(c.used) >= oidcUsedMax {
		for k, exp := range c.used {
			if !now.Before(exp) {
				delete(c.used, k)
			}
		}
		// Still full (a flood of valid states): forget arbitrary ones;
		// the state machine's deduplication and the provider's
		// single-use codes still stand behind them.
		for k := range c.used {
			if len(c.used) < oidcUsedMax {
				break
			}
			delete(c.used, k)
		}
	}
	c.used[key] = expires
	return true
}

// oidcPending is what the state cookie holds, sealed.
type oidcPending struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	Expires  int64  `json:"expires"` // Unix seconds
}

func randomString() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func stateCookie(value string, maxAge int, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: oidcStateCookie, Value: value, Path: oidcCookiePath, MaxAge: maxAge, Expires: expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
}

func (a *API) sealPending(p oidcPending) (string, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	s, err := a.b.Sealer().Seal(oidcStatePurpose, raw)
	if err != nil {
		return "", err
	}
	enc, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(enc), nil
}

var errNoPending = problem.E(problem.Unauthenticated, "no sign-in is under way in this browser (its cookie is missing, expired or not this cluster's); start again at /api/v1/auth/oidc/login")

func (a *API) openPending(r *http.Request, now time.Time) (oidcPending, error) {
	c, err := r.Cookie(oidcStateCookie)
	if err != nil || len(c.Value) > 4096 {
		return oidcPending{}, errNoPending
	}
	enc, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return oidcPending{}, errNoPending
	}
	var s secrets.Sealed
	if json.Unmarshal(enc, &s) != nil {
		return oidcPending{}, errNoPending
	}
	raw, err := a.b.Sealer().Open(oidcStatePurpose, &s)
	if err != nil {
		return oidcPending{}, errNoPending
	}
	var p oidcPending
	if json.Unmarshal(raw, &p) != nil || p.State == "" || !now.Before(time.Unix(p.Expires, 0)) {
		return oidcPending{}, errNoPending
	}
	return p, nil
}

func oauthConfig(o fsm.OIDCSettings, p *oidc.Provider, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: o.RedirectURL, Scopes: o.Scopes}
}

func (a *API) oidcSettings() (fsm.OIDCSettings, error) {
	var o fsm.OIDCSettings
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { o, ok = s.OIDCSettings() })
	if !ok {
		return o, problem.E(problem.NotFound, "single sign-on is not configured (PUT /api/v1/settings/oidc)")
	}
	return o, nil
}

// oidcLogin answers GET /api/v1/auth/oidc/login with a redirect to the
// provider.
func (a *API) oidcLogin(rq *request) (int, any, error) {
	o, err := a.oidcSettings()
	if err != nil {
		return 0, nil, err
	}
	p, err := a.oidc.provider(rq.ctx, o.Issuer)
	if err != nil {
		a.log.Warn("oidc discovery", "issuer", o.Issuer, "request_id", rq.id, "err", errors.Unwrap(err))
		return 0, nil, err
	}
	now := a.now()
	pend := oidcPending{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Issuer: o.Issuer, ClientID: o.ClientID, Expires: now.Add(oidcStateTTL).Unix()}
	v, err := a.sealPending(pend)
	if err != nil {
		return 0, nil, err
	}
	rq.setCookies = append(rq.setCookies, stateCookie(v, int(oidcStateTTL/time.Second), now.Add(oidcStateTTL)))
	rq.redirect = oauthConfig(o, p, "").AuthCodeURL(pend.State, oidc.Nonce(pend.Nonce), oauth2.S256ChallengeOption(pend.Verifier))
	return http.StatusFound, nil, nil
}

// oidcCallback answers the provider's redirect: it signs the user in and
// redirects to the UI.
func (a *API) oidcCallback(rq *request) (int, any, error) {
	// The state cookie serves once, whatever happens.
	rq.setCookies = append(rq.setCookies, stateCookie("", -1, time.Time{}))
	q := rq.r.URL.Query()
	if e := q.Get("error"); e != "" {
		if validate.Label("error", e) != nil {
			e = "an invalid error code"
		}
		return 0, nil, problem.E(problem.Unauthenticated, "the identity provider did not sign you in: %s", e)
	}
	now := a.now()
	pend, err := a.openPending(rq.r, now)
	if err != nil {
		return 0, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pend.State)) != 1 {
		return 0, nil, problem.E(problem.Unauthenticated, "the state does not match this browser's sign-in; start again")
	}
	o, err := a.oidcSettings()
	if err != nil {
		return 0, nil, err
	}
	if o.Issuer != pend.Issuer || o.ClientID != pend.ClientID {
		return 0, nil, problem.E(problem.Unauthenticated, "single sign-on was reconfigured during the sign-in; start again")
	}
	sum := sha256.Sum256([]byte(pend.State))
	stateKey := hex.EncodeToString(sum[:16])
	if !a.oidc.use(stateKey, time.Unix(pend.Expires, 0), now) {
		return 0, nil, problem.E(problem.Unauthenticated, "this sign-in was already used; start again")
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return 0, nil, problem.E(problem.Unauthenticated, "the provider's answer has no code")
	}
	if o.ClientSecret == nil {
		return 0, nil, problem.E(problem.Conflict, "single sign-on has no client secret")
	}
	secret, err := a.b.Sealer().Open(fsm.OIDCSecretPurpose, o.ClientSecret)
	if err != nil {
		return 0, nil, problem.Wrap(problem.Internal, err, "open the OIDC client secret")
	}
	p, err := a.oidc.provider(rq.ctx, o.Issuer)
	if err != nil {
		a.log.Warn("oidc discovery", "issuer", o.Issuer, "request_id", rq.id, "err", errors.Unwrap(err))
		return 0, nil, err
	}
	hc := a.oidc.httpClient()
	ctx, cancel := context.WithTimeout(rq.ctx, oidcHTTPTimeout)
	defer cancel()
	ctx = context.WithValue(oidc.ClientContext(ctx, hc), oauth2.HTTPClient, hc)
	tok, err := oauthConfig(o, p, string(secret)).Exchange(ctx, code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		a.log.Warn("oidc code exchange", "request_id", rq.id, "err", err)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return 0, nil, problem.E(problem.Unauthenticated, "the identity provider refused the code")
		}
		return 0, nil, problem.E(problem.Unavailable, "the identity provider's token endpoint did not answer; try again")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return 0, nil, problem.E(problem.Unauthenticated, "the identity provider returned no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.ClientID}).Verify(ctx, raw)
	if err != nil {
		a.log.Warn("oidc ID token refused", "request_id", rq.id, "err", err)
		return 0, nil, problem.E(problem.Unauthenticated, "the ID token failed verification: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pend.Nonce)) != 1 {
		return 0, nil, problem.E(problem.Unauthenticated, "the ID token's nonce does not match this sign-in")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return 0, nil, problem.E(problem.Unauthenticated, "the ID token's claims: %v", err)
	}
	ident := fsm.SSOIdentity{Issuer: o.Issuer, Subject: idt.Subject}
	var bound bool
	a.b.FSM().Read(func(s *fsm.State) { _, bound = s.UserBySSO(ident) })
	name, _ := claims[o.UsernameClaim].(string)
	if !bound {
		if err := validate.Label(o.UsernameClaim, name); err != nil {
			return 0, nil, problem.E(problem.Permission, "the provider's %s claim %q cannot be a user name here (1-128 printable ASCII characters, no spaces); ask an admin", o.UsernameClaim, name)
		}
	}
	role := mapRole(o, claims)
	secretTok := newSessionSecret()
	expires := now.Add(a.sessionTTL).UTC().Truncate(time.Second)
	res, err := a.propose(rq, fsm.Command{Type: fsm.CmdOIDCUser, RequestID: "oidc-login/" + stateKey, OIDCLogin: &fsm.OIDCLoginCmd{
		Identity: ident, Name: name, Role: role, NewUserID: NewID("usr_"), CreatedAt: now,
		Session: fsm.Token{ID: NewID("ses_"), Hash: fsm.HashToken(secretTok), CreatedAt: now, Kind: fsm.TokenSession,
			Name: "sso from " + agentsvc.PeerKey(clientAddr(rq)), ExpiresAt: expires},
	}})
	if err != nil {
		return 0, nil, err
	}
	if res.Replayed || res.User == nil || res.Token == nil {
		return 0, nil, problem.E(problem.Unauthenticated, "this sign-in was already used; start again")
	}
	rq.user, rq.token = *res.User, *res.Token
	rq.setCookies = append(rq.setCookies, auth.SessionCookies(secretTok, expires)...)
	rq.redirect = oidcSuccessURL
	return http.StatusFound, nil, nil
}

// mapRole is the role the claims give: "" when no role claim is set.
func mapRole(o fsm.OIDCSettings, claims map[string]any) fsm.Role {
	if o.RoleClaim == "" {
		return ""
	}
	var values []string
	switch v := claims[o.RoleClaim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	for _, v := range values {
		for _, admin := range o.AdminValues {
			if v == admin {
				return fsm.RoleAdmin
			}
		}
	}
	return fsm.RoleUser
}

// oidcJSON is the settings as GET and PUT show them: the secret is
// write-only.
type oidcJSON struct {
	Issuer          string   `json:"issuer"`
	ClientID        string   `json:"client_id"`
	ClientSecretSet bool     `json:"client_secret_set"`
	RedirectURL     string   `json:"redirect_url"`
	Scopes          []string `json:"scopes"`
	UsernameClaim   string   `json:"username_claim"`
	RoleClaim       string   `json:"role_claim"`
	AdminValues     []string `json:"admin_values"`
}

func oidcOut(o fsm.OIDCSettings) oidcJSON {
	out := oidcJSON{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecretSet: o.ClientSecret != nil, RedirectURL: o.RedirectURL,
		Scopes: o.Scopes, UsernameClaim: o.UsernameClaim, RoleClaim: o.RoleClaim, AdminValues: o.AdminValues}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if out.AdminValues == nil {
		out.AdminValues = []string{}
	}
	return out
}

// authMethods tells a sign-in page how people sign in: with a password,
// and with single sign-on when an issuer is configured. It names nothing
// else of the configuration.
func (a *API) authMethods(rq *request) (int, any, error) {
	var o fsm.OIDCSettings
	a.b.FSM().Read(func(s *fsm.State) { o, _ = s.OIDCSettings() })
	sso := map[string]any{"enabled": o.Issuer != ""}
	if o.Issuer != "" {
		sso["name"] = "single sign-on"
	}
	return http.StatusOK, map[string]any{"password": true, "oidc": sso}, nil
}

func (a *API) getOIDC(rq *request) (int, any, error) {
	var o fsm.OIDCSettings
	a.b.FSM().Read(func(s *fsm.State) { o, _ = s.OIDCSettings() })
	return http.StatusOK, oidcOut(o), nil
}

// putOIDC sets single sign-on. The client secret is sealed here, before
// it enters the log; omitted, the current one is kept for the same issuer
// and client. An empty issuer turns single sign-on off.
func (a *API) putOIDC(rq *request) (int, any, error) {
	var in struct {
		Issuer        string   `json:"issuer"`
		ClientID      string   `json:"client_id"`
		ClientSecret  string   `json:"client_secret"`
		RedirectURL   string   `json:"redirect_url"`
		Scopes        []string `json:"scopes"`
		UsernameClaim string   `json:"username_claim"`
		RoleClaim     string   `json:"role_claim"`
		AdminValues   []string `json:"admin_values"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	o := fsm.OIDCSettings{Issuer: in.Issuer, ClientID: in.ClientID, RedirectURL: in.RedirectURL, Scopes: in.Scopes,
		UsernameClaim: in.UsernameClaim, RoleClaim: in.RoleClaim, AdminValues: in.AdminValues}
	if o.Issuer == "" {
		if in.ClientID != "" || in.ClientSecret != "" || in.RedirectURL != "" || len(in.Scopes) > 0 || in.UsernameClaim != "" || in.RoleClaim != "" || len(in.AdminValues) > 0 {
			return 0, nil, problem.E(problem.Invalid, "issuer: required (an empty issuer, alone, turns single sign-on off)")
		}
	} else {
		if len(in.ClientSecret) > 1024 {
			return 0, nil, problem.E(problem.Invalid, "client_secret: longer than 1024")
		}
		if in.ClientSecret != "" {
			sealed, err := a.b.Sealer().Seal(fsm.OIDCSecretPurpose, []byte(in.ClientSecret))
			if err != nil {
				return 0, nil, err
			}
			o.ClientSecret = sealed
		} else {
			var cur fsm.OIDCSettings
			a.b.FSM().Read(func(s *fsm.State) { cur, _ = s.OIDCSettings() })
			if cur.ClientSecret == nil || cur.Issuer != o.Issuer || cur.ClientID != o.ClientID {
				return 0, nil, problem.E(problem.Invalid, "client_secret: required (it is kept only for the same issuer and client_id)")
			}
			o.ClientSecret = cur.ClientSecret
		}
		o.Normalize()
		if err := o.Validate(); err != nil {
			return 0, nil, err
		}
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetOIDC, RequestID: rq.key, SetOIDC: &o}); err != nil {
		return 0, nil, err
	}
	a.oidc.forget(o.Issuer)
	return http.StatusOK, oidcOut(o), nil
}
