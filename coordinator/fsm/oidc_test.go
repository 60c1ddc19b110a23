package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

const testIssuer = "https://idp.example.com/realms/x"

func validOIDC() OIDCSettings {
	return OIDCSettings{Issuer: testIssuer, ClientID: "proximity", ClientSecret: &secrets.Sealed{KeyID: "k", Nonce: []byte("n"), Data: []byte("d")},
		RedirectURL: "https://proximity.example.com:7070" + OIDCCallbackPath}
}

func TestOIDCSettingsValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*OIDCSettings)
		want   string // "" valid
	}{
		"valid":                      {func(*OIDCSettings) {}, ""},
		"http on loopback":           {func(o *OIDCSettings) { o.Issuer = "http://127.0.0.1:5556/dex" }, ""},
		"http on localhost":          {func(o *OIDCSettings) { o.Issuer = "http://localhost:5556/dex" }, ""},
		"http elsewhere":             {func(o *OIDCSettings) { o.Issuer = "http://idp.example.com" }, "issuer"},
		"issuer with a query":        {func(o *OIDCSettings) { o.Issuer = testIssuer + "?a=b" }, "issuer"},
		"issuer relative":            {func(o *OIDCSettings) { o.Issuer = "idp.example.com" }, "issuer"},
		"no client id":               {func(o *OIDCSettings) { o.ClientID = "" }, "client_id"},
		"client id with a space":     {func(o *OIDCSettings) { o.ClientID = "a b" }, "client_id"},
		"no secret":                  {func(o *OIDCSettings) { o.ClientSecret = nil }, "client_secret"},
		"redirect over http":         {func(o *OIDCSettings) { o.RedirectURL = "http://p.example.com" + OIDCCallbackPath }, "redirect_url"},
		"redirect elsewhere":         {func(o *OIDCSettings) { o.RedirectURL = "https://p.example.com/cb" }, "redirect_url"},
		"no openid scope":            {func(o *OIDCSettings) { o.Scopes = []string{"profile"} }, "openid"},
		"scope with a quote":         {func(o *OIDCSettings) { o.Scopes = []string{"openid", `a"b`} }, "scopes"},
		"admin values without claim": {func(o *OIDCSettings) { o.AdminValues = []string{"admins"} }, "role_claim"},
		"empty admin value":          {func(o *OIDCSettings) { o.RoleClaim, o.AdminValues = "groups", []string{""} }, "admin_values"},
		"bad username claim":         {func(o *OIDCSettings) { o.UsernameClaim = "a b" }, "username_claim"},
	} {
		o := validOIDC()
		tc.change(&o)
		o.Normalize()
		err := o.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	o := validOIDC()
	o.Normalize()
	if o.UsernameClaim != "preferred_username" || strings.Join(o.Scopes, " ") != "openid profile email" {
		t.Fatalf("defaults: %+v", o)
	}
}

func oidcLoginCmd(rid, sub, name string, role Role) Command {
	return Command{Type: CmdOIDCUser, RequestID: rid, OIDCLogin: &OIDCLoginCmd{
		Identity: SSOIdentity{Issuer: testIssuer, Subject: sub}, Name: name, Role: role, NewUserID: "usr-" + rid, CreatedAt: t0,
		Session: Token{ID: "ses-" + rid, Hash: HashToken("secret-" + rid), Kind: TokenSession, ExpiresAt: t0.Add(time.Hour)}}}
}

func TestOIDCLogin(t *testing.T) {
	f := New(0)
	mustOK(t, apply(t, f, Command{Type: CmdInitAdmin, RequestID: "init", InitAdmin: &InitAdminCmd{
		User: User{ID: "u1", Name: "admin"}, Token: Token{ID: "t1", UserID: "u1", Hash: HashToken("secret")}}})[0])
	// Not configured: refused.
	mustKind(t, apply(t, f, oidcLoginCmd("l0", "s1", "alice", RoleUser))[0], problem.Conflict)
	o := validOIDC()
	mustOK(t, apply(t, f, Command{Type: CmdSetOIDC, RequestID: "set", SetOIDC: &o})[0])
	// A retry seals the secret anew (another nonce): the same request.
	retry := validOIDC()
	retry.ClientSecret.Nonce = []byte("another")
	if r := mustOK(t, apply(t, f, Command{Type: CmdSetOIDC, RequestID: "set", SetOIDC: &retry})[0]); !r.Replayed {
		t.Fatal("a retry of the settings was applied again")
	}

	// The first sign-in creates the user, bound to the subject.
	r := mustOK(t, apply(t, f, oidcLoginCmd("l1", "s1", "alice", RoleAdmin))[0])
	if r.User.ID != "usr-l1" || r.User.Role != RoleAdmin || r.User.SSO == nil || r.Token.UserID != "usr-l1" {
		t.Fatalf("first sign-in: %+v %+v", r.User, r.Token)
	}
	// The next finds it by subject, whatever the name, and maps the role.
	r = mustOK(t, apply(t, f, oidcLoginCmd("l2", "s1", "renamed", RoleUser))[0])
	if r.User.ID != "usr-l1" || r.User.Name != "alice" || r.User.Role != RoleUser {
		t.Fatalf("second sign-in: %+v", r.User)
	}
	// No role claim: the role stays.
	r = mustOK(t, apply(t, f, oidcLoginCmd("l3", "s1", "alice", ""))[0])
	if r.User.Role != RoleUser {
		t.Fatalf("without a role: %+v", r.User)
	}
	// A local user's name is not taken over; nothing is created.
	mustOK(t, apply(t, f, Command{Type: CmdCreateUser, RequestID: "cu", CreateUser: &CreateUserCmd{User: User{ID: "u2", Name: "bob", Role: RoleUser}}})[0])
	mustKind(t, apply(t, f, oidcLoginCmd("l4", "s2", "BOB", RoleAdmin))[0], problem.Conflict)
	// A session that cannot be made leaves no user behind.
	bad := oidcLoginCmd("l5", "s3", "carol", RoleUser)
	bad.OIDCLogin.Session.Hash = HashToken("secret-l1")
	mustKind(t, apply(t, f, bad)[0], problem.Conflict)
	st := stateOf(t, f)
	if st.nameTaken("carol") {
		t.Fatal("a refused sign-in created a user")
	}
	if u, _ := st.User("u2"); u.SSO != nil || u.Role != RoleUser {
		t.Fatalf("bob changed: %+v", u)
	}
	// disable stands for an admin's disabling a user.
	disable := func(id string) {
		f.Read(func(s *State) {
			u := *s.Users[id]
			u.Disabled = true
			s.Users[id] = &u
		})
	}
	// The last enabled admin is not demoted by the provider.
	mustOK(t, apply(t, f, oidcLoginCmd("l6", "s4", "dana", RoleAdmin))[0])
	disable("u1")
	mustKind(t, apply(t, f, oidcLoginCmd("l7", "s4", "dana", RoleUser))[0], problem.Conflict)
	// A disabled user is refused.
	disable("usr-l1")
	mustKind(t, apply(t, f, oidcLoginCmd("l8", "s1", "alice", RoleUser))[0], problem.Permission)
	// Another issuer's subject is another person; turning SSO off
	// refuses sign-ins.
	mustOK(t, apply(t, f, Command{Type: CmdSetOIDC, RequestID: "off", SetOIDC: &OIDCSettings{}})[0])
	mustKind(t, apply(t, f, oidcLoginCmd("l9", "s4", "dana", RoleAdmin))[0], problem.Conflict)
	// The settings and the bindings survive a snapshot.
	raw, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"sso":{"issuer":"`+testIssuer+`","subject":"s4"}`) {
		t.Fatal("the binding is not in the snapshot")
	}
}
