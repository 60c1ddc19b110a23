package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Token lifetimes.
const (
	maxTokenTTL = 5 * 365 * 24 * time.Hour
	minTokenTTL = time.Minute
)

type userDetailJSON struct {
	userJSON
	Disabled    bool       `json:"disabled"`
	Quota       *fsm.Quota `json:"quota"`
	HasPassword bool       `json:"has_password"`
	TOTPEnabled bool       `json:"totp_enabled"`
}

func userDetail(u fsm.User) userDetailJSON {
	return userDetailJSON{userJSON: userOut(u), Disabled: u.Disabled, Quota: u.Quota, HasPassword: u.PasswordHash != "",
		TOTPEnabled: u.TOTP != nil && u.TOTP.Enabled}
}

// proposeEverywhere proposes a command that takes a credential away
// (revoke, disable, delete, a new password) and answers once every server
// has applied it, so the next request to any server is refused.
func (a *API) proposeEverywhere(rq *request, cmd fsm.Command) (fsm.Result, error) {
	res, err := a.propose(rq, cmd)
	if err != nil {
		return res, err
	}
	if err := a.b.WaitApplied(rq.ctx, res.Index); err != nil {
		a.log.Warn("wait for the servers to apply", "request_id", rq.id, "err", err)
	}
	return res, nil
}

// lookupUser reads a user; an unknown one is 404.
func (a *API) lookupUser(id string) (fsm.User, error) {
	var u fsm.User
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { u, ok = s.User(id) })
	if !ok {
		return fsm.User{}, problem.E(problem.NotFound, "user %s not found", id)
	}
	return u, nil
}

func (a *API) getUser(rq *request) (int, any, error) {
	u, err := a.lookupUser(rq.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userDetail(u), nil
}

func (a *API) patchUser(rq *request) (int, any, error) {
	var in struct {
		Role     *fsm.Role       `json:"role"`
		Disabled *bool           `json:"disabled"`
		Quota    json.RawMessage `json:"quota"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	cmd := fsm.UpdateUserCmd{ID: rq.r.PathValue("id"), Role: in.Role, Disabled: in.Disabled}
	switch q := bytes.TrimSpace(in.Quota); {
	case len(q) == 0:
	case bytes.Equal(q, []byte("null")):
		cmd.ClearQuota = true
	default:
		var quota fsm.Quota
		dec := json.NewDecoder(bytes.NewReader(q))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&quota); err != nil {
			return 0, nil, problem.E(problem.Invalid, "quota: %v", err)
		}
		cmd.Quota = &quota
	}
	if cmd.Role == nil && cmd.Disabled == nil && cmd.Quota == nil && !cmd.ClearQuota {
		return 0, nil, problem.E(problem.Invalid, "body: give role, disabled or quota")
	}
	res, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdUpdateUser, RequestID: rq.key, UpdateUser: &cmd})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userDetail(*res.User), nil
}

func (a *API) deleteUser(rq *request) (int, any, error) {
	id := rq.r.PathValue("id")
	if id == rq.user.ID {
		return 0, nil, problem.E(problem.Conflict, "a user cannot delete itself")
	}
	if _, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdDeleteUser, RequestID: rq.key, DeleteUser: &fsm.DeleteUserCmd{ID: id}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Current    bool       `json:"current"`
}

func (a *API) tokenOut(t fsm.Token, current string) tokenJSON {
	out := tokenJSON{ID: t.ID, Name: t.Name, Kind: t.Kind, CreatedAt: t.CreatedAt, Current: t.ID == current}
	if out.Kind == "" {
		out.Kind = fsm.TokenAPI
	}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	if u, ok := a.lastUsed.get(t.ID); ok {
		out.LastUsedAt = &u
	}
	return out
}

func (a *API) listTokens(rq *request) (int, any, error) {
	uid := rq.r.PathValue("id")
	if _, err := a.lookupUser(uid); err != nil {
		return 0, nil, err
	}
	var toks []fsm.Token
	a.b.FSM().Read(func(s *fsm.State) { toks = s.TokensOf(uid) })
	out := page[tokenJSON]{Items: []tokenJSON{}, Total: len(toks), Page: 1, PerPage: len(toks)}
	now := a.now()
	for _, t := range toks {
		if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
			continue // expired: refused already, listed no more
		}
		out.Items = append(out.Items, a.tokenOut(t, rq.token.ID))
	}
	out.Total, out.PerPage = len(out.Items), max(1, len(out.Items))
	return http.StatusOK, out, nil
}

func (a *API) revokeToken(rq *request) (int, any, error) {
	uid, tid := rq.r.PathValue("id"), rq.r.PathValue("tid")
	if _, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdRevokeToken, RequestID: rq.key,
		RevokeToken: &fsm.RevokeTokenCmd{ID: tid, UserID: uid}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (a *API) me(rq *request) (int, any, error) {
	out := struct {
		userDetailJSON
		// Quota is the quota in force: the user's own, else the default.
		Quota fsm.Quota `json:"quota"`
		Token tokenJSON `json:"token"`
		Usage fsm.Usage `json:"usage"`
	}{}
	var err error
	a.b.FSM().Read(func(s *fsm.State) {
		u, ok := s.User(rq.user.ID)
		if !ok {
			err = problem.E(problem.NotFound, "user %s not found", rq.user.ID)
			return
		}
		out.userDetailJSON = userDetail(u)
		out.Quota, out.Usage = s.QuotaFor(u.ID), s.UsageOf(u.ID)
	})
	if err != nil {
		return 0, nil, err
	}
	out.Token = a.tokenOut(rq.token, rq.token.ID)
	return http.StatusOK, out, nil
}

// setPassword sets a user's password: an admin for anyone, a user for
// itself; changing one's own password takes the current one when there
// is one. It ends the user's other sessions.
func (a *API) setPassword(rq *request) (int, any, error) {
	var in struct {
		Password        string `json:"password"`
		CurrentPassword string `json:"current_password"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := auth.CheckPassword(in.Password); err != nil {
		return 0, nil, problem.E(problem.Invalid, "%v", err)
	}
	u, err := a.lookupUser(rq.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if u.ID == rq.user.ID && u.PasswordHash != "" {
		ok, err := auth.VerifyPassword(rq.ctx, u.PasswordHash, in.CurrentPassword)
		if err != nil || !ok {
			return 0, nil, problem.E(problem.Permission, "current_password: does not match")
		}
	}
	hash, err := auth.HashPassword(rq.ctx, in.Password, a.passwordParams)
	if err != nil {
		return 0, nil, err
	}
	keep := ""
	if u.ID == rq.user.ID {
		keep = rq.token.ID
	}
	if _, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdSetPassword, RequestID: rq.key, SetPassword: &fsm.SetPasswordCmd{
		UserID: u.ID, Hash: hash, EndSessions: true, KeepSession: keep}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// tokenTTL reads an optional duration such as "720h".
func tokenTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < minTokenTTL || d > maxTokenTTL {
		return 0, problem.E(problem.Invalid, "ttl: %q must be a duration from %s to %s, such as \"720h\"", s, minTokenTTL, maxTokenTTL)
	}
	return d, nil
}

// tokenName checks a token's label.
func tokenName(s string) error {
	if s == "" {
		return nil
	}
	return validate.Label("name", s)
}

// lastUsedTimes remembers, per server and in memory only, when each token
// last authenticated a request here.
type lastUsedTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (l *lastUsedTimes) touch(id string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]time.Time{}
	}
	// Bounded: tokens are few; a map of every token ever used here is a
	// few bytes each, and revoked ones are dropped on listing.
	l.m[id] = t.UTC().Truncate(time.Second)
}

func (l *lastUsedTimes) get(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[id]
	return t, ok
}
