package fsm

import (
	"sort"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
)

// UpdateUserCmd changes a user's role, whether it is disabled, or its
// quota; nil fields stay as they are. Disabling a user deletes all its
// tokens and sessions.
type UpdateUserCmd struct {
	ID       string `json:"id"`
	Role     *Role  `json:"role,omitempty"`
	Disabled *bool  `json:"disabled,omitempty"`
	// Quota replaces the user's quota; ClearQuota returns it to the
	// default.
	Quota      *Quota `json:"quota,omitempty"`
	ClearQuota bool   `json:"clear_quota,omitempty"`
}

// DeleteUserCmd deletes a user that owns no app, with its tokens.
type DeleteUserCmd struct {
	ID string `json:"id"`
}

// RevokeTokenCmd deletes a token or session. UserID, when set, must own
// it.
type RevokeTokenCmd struct {
	ID     string `json:"id"`
	UserID string `json:"user_id,omitempty"`
}

// SetPasswordCmd sets a user's password hash (argon2id, encoded).
type SetPasswordCmd struct {
	UserID string `json:"user_id"`
	Hash   string `json:"hash"`
	// EndSessions deletes the user's sessions except KeepSession.
	EndSessions bool   `json:"end_sessions,omitempty"`
	KeepSession string `json:"keep_session,omitempty"`
}

func (s *State) updateUser(c UpdateUserCmd) (*User, error) {
	u, ok := s.Users[c.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "user %s not found", c.ID)
	}
	next := *u
	if c.Role != nil {
		if *c.Role != RoleAdmin && *c.Role != RoleUser {
			return nil, problem.E(problem.Invalid, "role: %q must be admin or user", *c.Role)
		}
		next.Role = *c.Role
	}
	if c.Disabled != nil {
		next.Disabled = *c.Disabled
	}
	if c.Quota != nil {
		if err := c.Quota.Validate(); err != nil {
			return nil, err
		}
		q := *c.Quota
		next.Quota = &q
	}
	if c.ClearQuota {
		next.Quota = nil
	}
	// The cluster keeps at least one enabled admin.
	if u.Role == RoleAdmin && !u.Disabled && (next.Role != RoleAdmin || next.Disabled) && s.enabledAdmins() == 1 {
		return nil, problem.E(problem.Conflict, "user %s is the last enabled admin", c.ID)
	}
	s.Users[c.ID] = &next
	if next.Disabled && !u.Disabled {
		s.deleteTokensOf(c.ID, "")
	}
	cp := next
	return &cp, nil
}

func (s *State) enabledAdmins() int {
	n := 0
	for _, u := range s.Users {
		if u.Role == RoleAdmin && !u.Disabled {
			n++
		}
	}
	return n
}

// deleteTokensOf deletes a user's tokens and sessions, except keep.
func (s *State) deleteTokensOf(userID, keep string) {
	for id, t := range s.Tokens {
		if t.UserID == userID && id != keep {
			delete(s.byHash, t.Hash)
			delete(s.Tokens, id)
		}
	}
}

func (s *State) deleteUser(c DeleteUserCmd) error {
	u, ok := s.Users[c.ID]
	if !ok {
		return problem.E(problem.NotFound, "user %s not found", c.ID)
	}
	var owned []string
	for id, a := range s.Apps {
		if a.Owner == c.ID {
			owned = append(owned, id)
		}
	}
	if len(owned) > 0 {
		sort.Strings(owned)
		return problem.E(problem.Conflict, "user %s owns %d app(s): %s; delete them first", c.ID, len(owned), strings.Join(owned, ", "))
	}
	if u.Role == RoleAdmin && !u.Disabled && s.enabledAdmins() == 1 {
		return problem.E(problem.Conflict, "user %s is the last enabled admin", c.ID)
	}
	s.deleteTokensOf(c.ID, "")
	delete(s.Users, c.ID)
	return nil
}

func (s *State) revokeToken(c RevokeTokenCmd) error {
	t, ok := s.Tokens[c.ID]
	if !ok || (c.UserID != "" && t.UserID != c.UserID) {
		return problem.E(problem.NotFound, "token %s not found", c.ID)
	}
	delete(s.byHash, t.Hash)
	delete(s.Tokens, c.ID)
	return nil
}

func (s *State) setPassword(c SetPasswordCmd) error {
	u, ok := s.Users[c.UserID]
	if !ok {
		return problem.E(problem.NotFound, "user %s not found", c.UserID)
	}
	if !strings.HasPrefix(c.Hash, "$argon2id$") {
		return problem.E(problem.Invalid, "password: not an argon2id hash")
	}
	next := *u
	next.PasswordHash = c.Hash
	s.Users[c.UserID] = &next
	if c.EndSessions {
		for id, t := range s.Tokens {
			if t.UserID == c.UserID && t.Kind == TokenSession && id != c.KeepSession {
				delete(s.byHash, t.Hash)
				delete(s.Tokens, id)
			}
		}
	}
	return nil
}

// UserByName finds a user by name, case-insensitively.
func (s *State) UserByName(name string) (User, bool) {
	for _, u := range s.Users {
		if strings.EqualFold(u.Name, name) {
			return *u, true
		}
	}
	return User{}, false
}

// TokensOf lists a user's tokens and sessions, oldest first.
func (s *State) TokensOf(userID string) []Token {
	var out []Token
	for _, t := range s.Tokens {
		if t.UserID == userID {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Identity is who a request speaks for: the user and the token or
// session it authenticated with.
type Identity struct {
	User  User
	Token Token
}

// AuthenticateAt checks a token or session secret at time now: it must
// exist, not be expired, and belong to an enabled user.
func (s *State) AuthenticateAt(secret string, now time.Time) (Identity, bool) {
	id, ok := s.byHash[HashToken(secret)]
	if !ok {
		return Identity{}, false
	}
	t := s.Tokens[id]
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Identity{}, false
	}
	u, ok := s.Users[t.UserID]
	if !ok || u.Disabled {
		return Identity{}, false
	}
	return Identity{User: *u, Token: *t}, true
}

// ListAllUsers returns every user, sorted by name.
func (s *State) ListAllUsers() []User {
	all := make([]User, 0, len(s.Users))
	for _, u := range s.Users {
		all = append(all, *u)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}
