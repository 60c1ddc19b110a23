package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ctlIn runs proximityctl with the environment env and stdin as its
// standard input (not a terminal, so answers are read as lines).
func ctlIn(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runIn(strings.NewReader(stdin), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestLoginSessionAndUsersCommandLine(t *testing.T) {
	ts, admin := startServer(t)
	adminEnv := map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_TOKEN": admin, "PROXIMITY_CACERT": ts.caCert}
	for _, name := range []string{"alice", "bob"} {
		if code, _, errs := ctl(t, ts, admin, "users", "create", name); code != 0 {
			t.Fatalf("users create %s: %d %s", name, code, errs)
		}
	}
	const pw, pw2 = "correct horse battery", "staple staple staple"

	// An admin sets alice's password: twice, as lines of standard input.
	if code, _, errs := ctlIn(t, adminEnv, pw+"\n"+pw+"x\n", "users", "passwd", "alice"); code != 2 || !strings.Contains(errs, "differ") {
		t.Fatalf("passwd with two different passwords: %d %s", code, errs)
	}
	if code, _, errs := ctlIn(t, adminEnv, pw+"\n"+pw+"\n", "users", "passwd", "alice"); code != 0 || !strings.Contains(errs, "password set for alice") {
		t.Fatalf("users passwd alice: %d %s", code, errs)
	}

	// alice logs in with the password on standard input; a wrong one
	// stores nothing.
	cfg := t.TempDir()
	cred := filepath.Join(cfg, "proximity", "credentials")
	loginEnv := map[string]string{"PROXIMITY_ADDR": ts.addr, "PROXIMITY_CACERT": ts.caCert, "XDG_CONFIG_HOME": cfg}
	if code, _, errs := ctlIn(t, loginEnv, "wrong password!\n", "login", "--name", "alice"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("login with a wrong password: %d %s", code, errs)
	}
	if _, err := os.Stat(cred); !os.IsNotExist(err) {
		t.Fatalf("credentials after a failed login: %v", err)
	}
	code, out, errs := ctlIn(t, loginEnv, "alice\n"+pw+"\n", "login", "-o", "json")
	if code != 0 || !strings.Contains(out, `"name": "alice"`) || strings.Contains(out, "pxs_") {
		t.Fatalf("login: %d %s %s", code, out, errs)
	}
	fi, err := os.Stat(cred)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", err, fi)
	}
	if di, err := os.Stat(filepath.Dir(cred)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("credentials directory: %v %v", err, di)
	}
	raw, _ := os.ReadFile(cred)
	var s session
	if err := json.Unmarshal(raw, &s); err != nil || !strings.HasPrefix(s.Token, "pxs_") || s.Addr != ts.addr || s.User.Name != "alice" ||
		!strings.Contains(s.CAPEM, "BEGIN CERTIFICATE") || s.ExpiresAt.Before(time.Now()) || strings.Contains(string(raw), pw) {
		t.Fatalf("credentials: %v %s", err, raw)
	}

	// Without PROXIMITY_ADDR, PROXIMITY_TOKEN or PROXIMITY_CACERT, the
	// stored session is used, verified with the stored CA.
	sessEnv := map[string]string{"XDG_CONFIG_HOME": cfg}
	var me meInfo
	code, out, errs = ctlEnv(t, sessEnv, "me", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &me) != nil || me.Name != "alice" || me.Token.Kind != "session" || !me.Token.Current || !me.HasPassword {
		t.Fatalf("me from the stored session: %d %s %s", code, out, errs)
	}
	if code, out, _ = ctlEnv(t, sessEnv, "me"); code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "alice") || !strings.Contains(out, "session "+me.Token.ID) {
		t.Fatalf("me table: %d %s", code, out)
	}
	// PROXIMITY_TOKEN wins over the session (its address and CA serve).
	if code, out, errs = ctlEnv(t, map[string]string{"XDG_CONFIG_HOME": cfg, "PROXIMITY_TOKEN": admin}, "me", "-o", "json"); code != 0 || !strings.Contains(out, `"name": "admin"`) {
		t.Fatalf("me with PROXIMITY_TOKEN: %d %s %s", code, out, errs)
	}
	// The session's token never goes to another address.
	if code, _, errs = ctlEnv(t, map[string]string{"XDG_CONFIG_HOME": cfg, "PROXIMITY_ADDR": "https://127.0.0.1:1"}, "me"); code != 2 || !strings.Contains(errs, "is for "+ts.addr) {
		t.Fatalf("me at another address: %d %s", code, errs)
	}
	code, out, _ = ctlEnv(t, sessEnv, "users", "tokens", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], me.Token.ID) ||
		!strings.Contains(lines[1], "session") || !strings.HasSuffix(lines[1], "*") {
		t.Fatalf("users tokens list: %d\n%s", code, out)
	}
	// alice is no admin: other users are out of reach.
	if code, _, errs = ctlEnv(t, sessEnv, "users", "disable", "bob"); code != 1 || !strings.Contains(errs, "403") {
		t.Fatalf("alice disabling bob: %d %s", code, errs)
	}

	// alice changes her own password (current one first); her session
	// lives on.
	if code, _, errs = ctlIn(t, sessEnv, "not it at all\n"+pw2+"\n"+pw2+"\n", "users", "passwd"); code != 1 || !strings.Contains(errs, "current_password") {
		t.Fatalf("own passwd with a wrong current password: %d %s", code, errs)
	}
	if code, _, errs = ctlIn(t, sessEnv, pw+"\n"+pw2+"\n"+pw2+"\n", "users", "passwd"); code != 0 {
		t.Fatalf("own passwd: %d %s", code, errs)
	}
	// Logging in again (the address and CA from the stored session) ends
	// the session it replaces.
	if code, _, errs = ctlIn(t, sessEnv, pw2+"\n", "login", "--name", "alice"); code != 0 {
		t.Fatalf("login again: %d %s", code, errs)
	}
	if code, _, errs = ctl(t, ts, s.Token, "me"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("the replaced session: %d %s", code, errs)
	}
	raw, _ = os.ReadFile(cred)
	if err := json.Unmarshal(raw, &s); err != nil || s.CAPEM == "" {
		t.Fatalf("credentials after the second login: %v %s", err, raw)
	}
	if code, _, errs = ctlEnv(t, sessEnv, "me"); code != 0 {
		t.Fatalf("me after the second login: %d %s", code, errs)
	}

	// A file others can read is refused; one that has ended says so.
	if err := os.Chmod(cred, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs = ctlEnv(t, sessEnv, "me"); code != 2 || !strings.Contains(errs, "mode 0644 refused") {
		t.Fatalf("me with a 0644 file: %d %s", code, errs)
	}
	if err := os.Chmod(cred, 0o600); err != nil {
		t.Fatal(err)
	}
	ended := s
	ended.ExpiresAt = time.Now().Add(-time.Minute)
	endedDir := t.TempDir()
	if err := saveSession(filepath.Join(endedDir, credentialsFile), &ended); err != nil {
		t.Fatal(err)
	}
	if code, _, errs = ctlEnv(t, map[string]string{"XDG_CONFIG_HOME": endedDir}, "me"); code != 2 || !strings.Contains(errs, "proximityctl login again") {
		t.Fatalf("me with an ended session: %d %s", code, errs)
	}

	// logout ends the session on the server and removes the file.
	if code, _, errs = ctlEnv(t, sessEnv, "logout"); code != 0 {
		t.Fatalf("logout: %d %s", code, errs)
	}
	if _, err := os.Stat(cred); !os.IsNotExist(err) {
		t.Fatalf("credentials after logout: %v", err)
	}
	if code, _, errs = ctl(t, ts, s.Token, "me"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("the session after logout: %d %s", code, errs)
	}
	if code, _, errs = ctlEnv(t, sessEnv, "logout"); code != 2 || !strings.Contains(errs, "not logged in") {
		t.Fatalf("logout twice: %d %s", code, errs)
	}
	// A session revoked by an admin: logout still removes the file.
	if code, _, errs = ctlIn(t, loginEnv, pw2+"\n", "login", "--name", "alice"); code != 0 {
		t.Fatalf("login a third time: %d %s", code, errs)
	}
	if code, out, errs = ctlEnv(t, sessEnv, "me", "-o", "json"); code != 0 || json.Unmarshal([]byte(out), &me) != nil {
		t.Fatalf("me: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, admin, "users", "tokens", "revoke", "--user", "alice", me.Token.ID); code != 0 {
		t.Fatalf("revoke alice's session: %d %s", code, errs)
	}
	if code, _, errs = ctlEnv(t, sessEnv, "me"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("me with a revoked session: %d %s", code, errs)
	}
	if code, _, errs = ctlEnv(t, sessEnv, "logout"); code != 0 {
		t.Fatalf("logout of a revoked session: %d %s", code, errs)
	}
	if _, err := os.Stat(cred); !os.IsNotExist(err) {
		t.Fatalf("credentials after logout of a revoked session: %v", err)
	}

	// bob's token is refused while he is disabled; then he is deleted.
	var tok struct {
		ID, Token, Name string
		ExpiresAt       *time.Time `json:"expires_at"`
	}
	code, out, errs = ctl(t, ts, admin, "users", "tokens", "create", "bob", "--name", "ci", "--ttl", "720h", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, "pxt_") || tok.Name != "ci" || tok.ExpiresAt == nil {
		t.Fatalf("users tokens create bob: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, tok.Token, "me"); code != 0 {
		t.Fatalf("bob's token: %d %s", code, errs)
	}
	if code, out, errs = ctl(t, ts, admin, "users", "disable", "bob"); code != 0 || !strings.Contains(out, "true") {
		t.Fatalf("users disable bob: %d %s %s", code, out, errs)
	}
	if code, _, _ = ctl(t, ts, tok.Token, "me"); code != 1 {
		t.Fatalf("a disabled user's token: %d", code)
	}
	if code, _, errs = ctl(t, ts, admin, "users", "enable", "bob"); code != 0 {
		t.Fatalf("users enable bob: %d %s", code, errs)
	}
	// Disabling ended bob's tokens; he gets another.
	tok.ExpiresAt = nil
	code, out, errs = ctl(t, ts, admin, "users", "tokens", "create", "bob", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.ExpiresAt != nil {
		t.Fatalf("users tokens create once enabled: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, tok.Token, "me"); code != 0 {
		t.Fatalf("bob's new token: %d %s", code, errs)
	}
	if code, _, errs = ctl(t, ts, admin, "users", "tokens", "revoke", "--user", "bob", tok.ID); code != 0 {
		t.Fatalf("users tokens revoke: %d %s", code, errs)
	}
	if code, _, _ = ctl(t, ts, tok.Token, "me"); code != 1 {
		t.Fatalf("a revoked token: %d", code)
	}
	if code, _, errs = ctl(t, ts, admin, "users", "delete", "bob"); code != 0 {
		t.Fatalf("users delete bob: %d %s", code, errs)
	}
	if code, out, _ = ctl(t, ts, admin, "users", "list"); code != 0 || strings.Contains(out, "bob") || !strings.Contains(out, "alice") {
		t.Fatalf("users list after the delete: %d %s", code, out)
	}
	if code, _, errs = ctl(t, ts, admin, "users", "delete", "bob"); code != 1 || !strings.Contains(errs, `no user is named "bob"`) {
		t.Fatalf("users delete of nobody: %d %s", code, errs)
	}
}

func TestCredentialsPath(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/a"}, "/x/cfg/proximity/credentials"},
		{map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/home/a"}, "/home/a/.config/proximity/credentials"},
		{map[string]string{"HOME": "/home/a"}, "/home/a/.config/proximity/credentials"},
		{map[string]string{}, ""},
	} {
		if got := credentialsPath(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("credentialsPath(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}
