package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// NewTokenSecret returns a fresh API token secret: 256 random bits.
func NewTokenSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return "pxt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

type userJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      fsm.Role  `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func userOut(u fsm.User) userJSON {
	return userJSON{ID: u.ID, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt}
}

func (a *API) createUser(rq *request) (int, any, error) {
	var in struct {
		Name string   `json:"name"`
		Role fsm.Role `json:"role"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := validate.Label("name", in.Name); err != nil {
		return 0, nil, err
	}
	if in.Role != fsm.RoleAdmin && in.Role != fsm.RoleUser {
		return 0, nil, problem.E(problem.Invalid, "role: %q must be admin or user", in.Role)
	}
	res, err := a.propose(rq, fsm.Command{Type: fsm.CmdCreateUser, RequestID: rq.key, CreateUser: &fsm.CreateUserCmd{
		User: fsm.User{ID: NewID("usr_"), Name: in.Name, Role: in.Role, CreatedAt: a.now()},
	}})
	if err != nil {
		return 0, nil, err
	}
	// A repeat answers as the first did (see createReservation).
	return http.StatusCreated, userOut(*res.User), nil
}

func (a *API) listUsers(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	out := page[userJSON]{Items: []userJSON{}, Page: pg, PerPage: per}
	a.b.FSM().Read(func(s *fsm.State) {
		users, total := s.ListUsers(pg, per)
		out.Total = total
		for _, u := range users {
			out.Items = append(out.Items, userOut(u))
		}
	})
	return http.StatusOK, out, nil
}

func (a *API) createToken(rq *request) (int, any, error) {
	uid := rq.r.PathValue("id")
	var in struct {
		Name string `json:"name"`
		TTL  string `json:"ttl"`
	}
	if len(bytes.TrimSpace(rq.body)) > 0 {
		if err := rq.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	if err := tokenName(in.Name); err != nil {
		return 0, nil, err
	}
	ttl, err := tokenTTL(in.TTL)
	if err != nil {
		return 0, nil, err
	}
	now := a.now()
	tok := fsm.Token{ID: NewID("tok_"), UserID: uid, CreatedAt: now, Name: in.Name, Kind: fsm.TokenAPI}
	if ttl > 0 {
		tok.ExpiresAt = now.Add(ttl).UTC().Truncate(time.Second)
	}
	secret := rq.mintSecret(NewTokenSecret)
	tok.Hash = fsm.HashToken(secret)
	res, err := a.propose(rq, fsm.Command{Type: fsm.CmdCreateToken, RequestID: rq.key, CreateToken: &fsm.CreateTokenCmd{Token: tok}})
	if err != nil {
		return 0, nil, err
	}
	if res.Replayed && !a.minted(secret) {
		// Only the hash is stored: a request repeated by its client (or
		// retried through another server) cannot show the secret of the
		// token it created. A retry on this server can: it holds it.
		return 0, nil, problem.E(problem.Conflict,
			"this request already created token %s and its secret was shown once; create another token", res.Token.ID)
	}
	out := map[string]any{"id": res.Token.ID, "token": secret, "name": res.Token.Name}
	if !res.Token.ExpiresAt.IsZero() {
		out["expires_at"] = res.Token.ExpiresAt
	}
	return http.StatusCreated, out, nil
}
