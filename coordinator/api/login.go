package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
)

// Failed logins are throttled per source address and per name at that
// address: a guesser is slowed wherever it guesses from, and nobody can
// lock a name out from elsewhere, since another address has its own
// budget. Only failures are counted, and the budget is checked before the
// password, so a throttled guess learns nothing.
const (
	loginAddrBurst = 20
	loginAddrEvery = 5 * time.Second
	loginNameBurst = 5
	loginNameEvery = 20 * time.Second
	loginPeers     = 10_000
)

type loginThrottle struct {
	addr, name *agentsvc.PeerLimiter
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{
		addr: agentsvc.NewPeerLimiter(float64(time.Second)/float64(loginAddrEvery), loginAddrBurst, loginPeers),
		name: agentsvc.NewPeerLimiter(float64(time.Second)/float64(loginNameEvery), loginNameBurst, loginPeers),
	}
}

func nameKey(name, addr string) string {
	return strings.ToLower(name) + "@" + agentsvc.PeerKey(addr)
}

// wait is how long the address, or the name at the address, must wait.
func (t *loginThrottle) wait(name, addr string, now time.Time) time.Duration {
	return max(t.addr.Wait(addr, now), t.name.Wait(nameKey(name, addr), now))
}

func (t *loginThrottle) failed(name, addr string, now time.Time) {
	t.addr.Allow(addr, now)
	t.name.Allow(nameKey(name, addr), now)
}

func (a *API) login(rq *request) (int, any, error) {
	var in struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		OTP      string `json:"otp"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Name == "" || in.Password == "" || len(in.Name) > 128 || len(in.Password) > 4*auth.MaxPasswordLen {
		return 0, nil, problem.E(problem.Invalid, "name and password: required")
	}
	if !auth.SameOrigin(rq.r) {
		return 0, nil, problem.E(problem.Permission, "login from another origin")
	}
	addr, now := clientAddr(rq), time.Now()
	if wait := a.logins.wait(in.Name, addr, now); wait > 0 {
		return 0, nil, &errThrottled{wait: wait}
	}
	var u fsm.User
	var found bool
	a.b.FSM().Read(func(s *fsm.State) { u, found = s.UserByName(in.Name) })
	hash := u.PasswordHash
	if !found || hash == "" {
		hash = a.dummy()
	}
	ok, err := auth.VerifyPassword(rq.ctx, hash, in.Password)
	if err != nil && rq.ctx.Err() != nil {
		return 0, nil, rq.ctx.Err()
	}
	if !ok || !found || u.PasswordHash == "" || u.Disabled {
		a.logins.failed(in.Name, addr, now)
		a.log.Warn("login failed", "remote", agentsvc.PeerKey(addr), "request_id", rq.id)
		return 0, nil, problem.E(problem.Unauthenticated, "the name or the password is not right")
	}
	if u.TOTP != nil && u.TOTP.Enabled {
		if err := a.checkSecondFactor(rq, u, in.OTP); err != nil {
			if in.OTP != "" {
				a.logins.failed(in.Name, addr, now)
			}
			return 0, nil, err
		}
	}
	secret := rq.mintSecret(newSessionSecret)
	expires := a.now().Add(a.sessionTTL).UTC().Truncate(time.Second)
	res, err := a.propose(rq, fsm.Command{Type: fsm.CmdCreateToken, RequestID: rq.key, CreateToken: &fsm.CreateTokenCmd{
		Token: fsm.Token{ID: NewID("ses_"), UserID: u.ID, Hash: fsm.HashToken(secret), CreatedAt: a.now(),
			Kind: fsm.TokenSession, Name: "login from " + agentsvc.PeerKey(addr), ExpiresAt: expires},
	}})
	if err != nil {
		return 0, nil, err
	}
	if res.Replayed && !a.minted(secret) {
		// A retry on this server holds the secret it proposed (mintSecret);
		// a request repeated from elsewhere cannot show it.
		return 0, nil, problem.E(problem.Conflict, "this request already made a session; log in again")
	}
	expires = res.Token.ExpiresAt
	rq.user, rq.token = u, *res.Token
	rq.setCookies = append(rq.setCookies, auth.SessionCookies(secret, expires)...)
	return http.StatusOK, map[string]any{"token": secret, "expires_at": expires, "user": userOut(u)}, nil
}

// logout ends the caller's session on every server.
func (a *API) logout(rq *request) (int, any, error) {
	if rq.token.Kind != fsm.TokenSession {
		return 0, nil, problem.E(problem.Conflict, "logout ends a session; an API token is revoked with DELETE /api/v1/users/{id}/tokens/{tid}")
	}
	if _, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdRevokeToken, RequestID: rq.key,
		RevokeToken: &fsm.RevokeTokenCmd{ID: rq.token.ID, UserID: rq.user.ID}}); err != nil {
		return 0, nil, err
	}
	rq.setCookies = append(rq.setCookies, auth.ClearCookies()...)
	return http.StatusNoContent, nil, nil
}

// newSessionSecret is a session's secret: 256 random bits.
func newSessionSecret() string { return "pxs_" + strings.TrimPrefix(NewTokenSecret(), "pxt_") }

// dummy is a hash verified when the name is unknown or has no password,
// so the answer takes as long as for a wrong password.
func (a *API) dummy() string {
	a.dummyOnce.Do(func() {
		h, err := auth.HashPassword(context.Background(), auth.GeneratePassword(), a.passwordParams)
		if err != nil {
			a.log.Error("dummy password hash", "err", err)
		}
		a.dummyHash = h
	})
	return a.dummyHash
}
