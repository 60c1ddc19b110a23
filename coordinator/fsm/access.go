package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Role is what a user may do.
type Role string

// The roles.
const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// User is an account. Names are unique (case-insensitive).
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Disabled users cannot authenticate: their tokens and sessions stop
	// working at once, on every server.
	Disabled bool `json:"disabled,omitempty"`
	// Quota overrides the default quota (settings) for this user.
	Quota *Quota `json:"quota,omitempty"`
	// PasswordHash is the argon2id hash of the user's password in its
	// encoded form ("" when the user has none).
	PasswordHash string `json:"password_hash,omitempty"`
	// SSO is the provider identity the user signs in with by single
	// sign-on (oidc.go); nil for a user made by an admin.
	SSO *SSOIdentity `json:"sso,omitempty"`
	// TOTP is the user's second factor, if enrolled.
	TOTP *TOTPState `json:"totp,omitempty"`
}

// Quota limits what one user's apps may hold; 0 is unlimited.
type Quota struct {
	MaxApps     int `json:"max_apps"`
	MaxCores    int `json:"max_cores"`
	MaxMemoryMB int `json:"max_memory_mb"`
	MaxDiskGB   int `json:"max_disk_gb"`
}

// Token is an API bearer token. Only the SHA-256 of the secret is stored:
// tokens are 256-bit random values, so a fast hash is enough to make a
// leaked snapshot useless for logging in.
type Token struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// Name is the owner's label for an API token.
	Name string `json:"name,omitempty"`
	// Kind is TokenAPI (the default) or TokenSession (made by login).
	Kind string `json:"kind,omitempty"`
	// ExpiresAt ends the token; zero never expires.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Token kinds.
const (
	TokenAPI     = "api"
	TokenSession = "session"
)

// HashToken returns the stored form of a token secret.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *State) initAdmin(index uint64, c *InitAdminCmd) (*User, *Token, error) {
	for _, u := range s.Users {
		if u.Role == RoleAdmin {
			return nil, nil, problem.E(problem.Conflict, "an admin already exists")
		}
	}
	c.User.Role = RoleAdmin
	u, err := s.createUser(index, c.User)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.createToken(index, c.Token)
	if err != nil {
		delete(s.Users, u.ID)
		return nil, nil, err
	}
	return u, t, nil
}

func (s *State) createUser(_ uint64, u User) (*User, error) {
	if err := validate.Label("name", u.Name); err != nil {
		return nil, err
	}
	if u.Role != RoleAdmin && u.Role != RoleUser {
		return nil, problem.E(problem.Invalid, "role: %q must be admin or user", u.Role)
	}
	if u.ID == "" {
		return nil, problem.E(problem.Invalid, "id: required")
	}
	if _, ok := s.Users[u.ID]; ok {
		return nil, problem.E(problem.Conflict, "user %s already exists", u.ID)
	}
	for _, o := range s.Users {
		if strings.EqualFold(o.Name, u.Name) {
			return nil, problem.E(problem.Conflict, "user name %q is taken", u.Name)
		}
	}
	u.CreatedAt = u.CreatedAt.UTC()
	s.Users[u.ID] = &u
	cp := u
	return &cp, nil
}

func (s *State) createToken(_ uint64, t Token) (*Token, error) {
	if t.ID == "" || len(t.Hash) != 64 {
		return nil, problem.E(problem.Invalid, "token: id and hash required")
	}
	if _, ok := s.Users[t.UserID]; !ok {
		return nil, problem.E(problem.NotFound, "user %s not found", t.UserID)
	}
	if _, ok := s.Tokens[t.ID]; ok {
		return nil, problem.E(problem.Conflict, "token %s already exists", t.ID)
	}
	if _, ok := s.byHash[t.Hash]; ok {
		return nil, problem.E(problem.Conflict, "token already exists")
	}
	switch t.Kind {
	case "", TokenAPI:
	case TokenSession:
		if t.ExpiresAt.IsZero() {
			return nil, problem.E(problem.Invalid, "token: a session needs an expiry")
		}
	default:
		return nil, problem.E(problem.Invalid, "token: kind %q must be api or session", t.Kind)
	}
	if len(t.Name) > 128 {
		return nil, problem.E(problem.Invalid, "token: name longer than 128")
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt = t.ExpiresAt.UTC()
	s.Tokens[t.ID] = &t
	s.byHash[t.Hash] = t.ID
	cp := t
	cp.Hash = ""
	return &cp, nil
}

// HasTokenHash reports whether a token with this hash exists; the server
// uses it to check a half-written bootstrap token file.
func (s *State) HasTokenHash(hash string) bool {
	_, ok := s.byHash[hash]
	return ok
}

// HasAdmin reports whether an admin user exists.
func (s *State) HasAdmin() bool {
	for _, u := range s.Users {
		if u.Role == RoleAdmin {
			return true
		}
	}
	return false
}

// User returns a user by ID.
func (s *State) User(id string) (User, bool) {
	u, ok := s.Users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// ListUsers returns one page of users sorted by name, and the total.
func (s *State) ListUsers(page, perPage int) ([]User, int) {
	all := make([]User, 0, len(s.Users))
	for _, u := range s.Users {
		all = append(all, *u)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return validate.PageOf(all, page, perPage), len(all)
}
