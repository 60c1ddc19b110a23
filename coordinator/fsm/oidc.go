package fsm

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/validate"
)

// OIDCSecretPurpose is what the OIDC client secret is sealed for.
const OIDCSecretPurpose = "oidc-client-secret"

// OIDCCallbackPath is the only path an OIDC redirect URL may name: the
// API's callback.
const OIDCCallbackPath = "/api/v1/auth/oidc/callback"

// Defaults of the OIDC settings.
const (
	DefaultOIDCUsernameClaim = "preferred_username"
)

// DefaultOIDCScopes are the scopes asked for when none are set.
var DefaultOIDCScopes = []string{"openid", "profile", "email"}

// OIDCSettings configure single sign-on with an OpenID Connect provider.
// The client secret is sealed by the server that accepted the settings,
// before they enter the log; the state machine stores only the sealed
// value.
type OIDCSettings struct {
	Issuer       string          `json:"issuer"`
	ClientID     string          `json:"client_id"`
	ClientSecret *secrets.Sealed `json:"client_secret,omitempty"`
	RedirectURL  string          `json:"redirect_url"`
	Scopes       []string        `json:"scopes"`
	// UsernameClaim names the ID token claim that becomes the user name.
	UsernameClaim string `json:"username_claim"`
	// RoleClaim names the claim (a string or a list of strings) that
	// decides the role on every sign-in: admin when one of its values is
	// in AdminValues, user otherwise. Without it SSO does not manage
	// roles: a new user is a user and an existing one keeps its role.
	RoleClaim   string   `json:"role_claim"`
	AdminValues []string `json:"admin_values"`
}

// SSOIdentity is the provider identity a user signs in with: the issuer
// and the subject (the provider's stable ID of the person).
type SSOIdentity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// OIDCLoginCmd is one single sign-on: it finds the user bound to the
// identity, or creates it (with NewUserID) on the first sign-in, sets the
// mapped role, and creates the session, all in one apply.
type OIDCLoginCmd struct {
	Identity SSOIdentity `json:"identity"`
	// Name is the user name a new user gets.
	Name string `json:"name"`
	// Role is the mapped role; "" leaves an existing user's role alone
	// (no role claim is configured) and makes a new user a user.
	Role      Role      `json:"role,omitempty"`
	NewUserID string    `json:"new_user_id"`
	CreatedAt time.Time `json:"created_at"`
	Session   Token     `json:"session"`
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func claimName(field, s string) error {
	if s == "" || len(s) > 64 {
		return problem.E(problem.Invalid, "%s: must be 1-64 characters", field)
	}
	return validate.Label(field, s)
}

// Normalize fills in the defaults.
func (o *OIDCSettings) Normalize() {
	if len(o.Scopes) == 0 {
		o.Scopes = append([]string(nil), DefaultOIDCScopes...)
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = DefaultOIDCUsernameClaim
	}
	if o.AdminValues == nil {
		o.AdminValues = []string{}
	}
}

// Validate checks settings whose issuer is set (an empty issuer turns
// single sign-on off). The issuer must be https, except on a loopback
// host (a provider on the same machine); the redirect URL must be the
// API's own callback over https.
func (o *OIDCSettings) Validate() error {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return problem.E(problem.Invalid, "issuer: %q must be an absolute URL without query or fragment", o.Issuer)
	}
	if len(o.Issuer) > 512 {
		return problem.E(problem.Invalid, "issuer: longer than 512")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return problem.E(problem.Invalid, "issuer: %q must be https (http only on a loopback host)", o.Issuer)
	}
	if o.ClientID == "" || len(o.ClientID) > 255 || strings.IndexFunc(o.ClientID, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return problem.E(problem.Invalid, "client_id: required, 1-255 printable ASCII characters without spaces")
	}
	if o.ClientSecret == nil || len(o.ClientSecret.Data) == 0 {
		return problem.E(problem.Invalid, "client_secret: required")
	}
	r, err := url.Parse(o.RedirectURL)
	if err != nil || r.Scheme != "https" || r.Host == "" || r.User != nil || r.RawQuery != "" || r.Fragment != "" || r.Path != OIDCCallbackPath {
		return problem.E(problem.Invalid, "redirect_url: %q must be https://<the API's address>%s", o.RedirectURL, OIDCCallbackPath)
	}
	if len(o.Scopes) > 20 {
		return problem.E(problem.Invalid, "scopes: at most 20")
	}
	openid := false
	for _, s := range o.Scopes {
		if err := claimName("scopes", s); err != nil || strings.ContainsAny(s, `"\`) {
			return problem.E(problem.Invalid, "scopes: %q is not a scope", s)
		}
		openid = openid || s == "openid"
	}
	if !openid {
		return problem.E(problem.Invalid, "scopes: must include openid")
	}
	if err := claimName("username_claim", o.UsernameClaim); err != nil {
		return err
	}
	if o.RoleClaim != "" {
		if err := claimName("role_claim", o.RoleClaim); err != nil {
			return err
		}
	}
	if len(o.AdminValues) > 0 && o.RoleClaim == "" {
		return problem.E(problem.Invalid, "admin_values: need a role_claim")
	}
	if len(o.AdminValues) > 50 {
		return problem.E(problem.Invalid, "admin_values: at most 50")
	}
	for _, v := range o.AdminValues {
		if v == "" || len(v) > 256 {
			return problem.E(problem.Invalid, "admin_values: each 1-256 characters")
		}
	}
	return nil
}

func (s *State) setOIDC(o OIDCSettings) error {
	if o.Issuer == "" {
		s.OIDC = nil
		return nil
	}
	o.Normalize()
	if err := o.Validate(); err != nil {
		return err
	}
	s.OIDC = &o
	return nil
}

// OIDCSettings returns the single sign-on settings, if set.
func (s *State) OIDCSettings() (OIDCSettings, bool) {
	if s.OIDC == nil {
		return OIDCSettings{}, false
	}
	o := *s.OIDC
	o.Scopes = append([]string(nil), o.Scopes...)
	o.AdminValues = append([]string{}, o.AdminValues...)
	return o, true
}

// UserBySSO finds the user bound to a provider identity.
func (s *State) UserBySSO(id SSOIdentity) (User, bool) {
	for _, u := range s.Users {
		if u.SSO != nil && *u.SSO == id {
			return *u, true
		}
	}
	return User{}, false
}

// nameTaken reports whether a user has this name, case-insensitively.
func (s *State) nameTaken(name string) bool {
	for _, u := range s.Users {
		if strings.EqualFold(u.Name, name) {
			return true
		}
	}
	return false
}

// otherEnabledAdmins counts the enabled admins other than id.
func (s *State) otherEnabledAdmins(id string) int {
	n := 0
	for _, u := range s.Users {
		if u.ID != id && u.Role == RoleAdmin && !u.Disabled {
			n++
		}
	}
	return n
}

func (s *State) oidcLogin(index uint64, c OIDCLoginCmd) (*User, *Token, error) {
	if s.OIDC == nil || s.OIDC.Issuer != c.Identity.Issuer {
		return nil, nil, problem.E(problem.Conflict, "single sign-on with %s is not configured", c.Identity.Issuer)
	}
	if c.Identity.Subject == "" || len(c.Identity.Subject) > 255 {
		return nil, nil, problem.E(problem.Invalid, "the ID token's subject must be 1-255 characters")
	}
	if c.Role != "" && c.Role != RoleAdmin && c.Role != RoleUser {
		return nil, nil, problem.E(problem.Invalid, "role: %q must be admin or user", c.Role)
	}
	t := c.Session
	if t.ID == "" || len(t.Hash) != 64 || t.Kind != TokenSession || t.ExpiresAt.IsZero() {
		return nil, nil, problem.E(problem.Invalid, "session: id, hash and expiry required")
	}
	if _, ok := s.Tokens[t.ID]; ok {
		return nil, nil, problem.E(problem.Conflict, "token %s already exists", t.ID)
	}
	if _, ok := s.byHash[t.Hash]; ok {
		return nil, nil, problem.E(problem.Conflict, "token already exists")
	}
	// Everything that can refuse is checked before anything changes.
	u, found := s.UserBySSO(c.Identity)
	switch {
	case found && u.Disabled:
		return nil, nil, problem.E(problem.Permission, "user %s is disabled", u.Name)
	case found && c.Role != "" && u.Role != c.Role:
		if u.Role == RoleAdmin && s.otherEnabledAdmins(u.ID) == 0 {
			return nil, nil, problem.E(problem.Conflict, "the provider no longer makes %s an admin, and it is the last enabled admin; make another admin first", u.Name)
		}
		next := *s.Users[u.ID]
		next.Role = c.Role
		s.Users[u.ID] = &next
		u = next
	case !found:
		role := c.Role
		if role == "" {
			role = RoleUser
		}
		if s.nameTaken(c.Name) {
			return nil, nil, problem.E(problem.Conflict, "the user name %q belongs to another account; single sign-on does not take over an existing user", c.Name)
		}
		nu, err := s.createUser(index, User{ID: c.NewUserID, Name: c.Name, Role: role, CreatedAt: c.CreatedAt,
			SSO: &SSOIdentity{Issuer: c.Identity.Issuer, Subject: c.Identity.Subject}})
		if err != nil {
			return nil, nil, err
		}
		u = *nu
	}
	t.UserID = u.ID
	tok, err := s.createToken(index, t)
	if err != nil {
		return nil, nil, err
	}
	cp := u
	return &cp, tok, nil
}
