package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSettingsOIDCCommandLine sets single sign-on with the secret from a
// file, shows it without the secret, changes one setting keeping the
// others (and the secret), and turns it off.
func TestSettingsOIDCCommandLine(t *testing.T) {
	ts, token := startServer(t)
	secretFile := filepath.Join(t.TempDir(), "secret")
	const secret = "client-secret-known-to-the-test"
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := ctl(t, ts, token, "settings", "oidc", "--issuer", "https://idp.example", "--client-id", "proximity",
		"--client-secret-file", secretFile, "--redirect-url", "https://proximity.example/api/v1/auth/oidc/callback",
		"--role-claim", "groups", "--admin-values", "ops,admins")
	if code != 0 || !strings.Contains(out, "https://idp.example") || !strings.Contains(out, "set") || strings.Contains(out, secret) {
		t.Fatalf("set: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "settings", "oidc", "--client-id", "proximity-2", "-o", "json"); code == 0 {
		t.Fatalf("a new client ID without its secret was accepted: %s", out)
	}
	code, out, errs = ctl(t, ts, token, "settings", "oidc", "--username-claim", "email", "-o", "json")
	var o oidcSettings
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil {
		t.Fatalf("change one setting: %d %s %s", code, out, errs)
	}
	if o.UsernameClaim != "email" || o.ClientID != "proximity" || !o.ClientSecretSet || strings.Join(o.AdminValues, ",") != "ops,admins" || o.RoleClaim != "groups" {
		t.Fatalf("after --username-claim: %+v", o)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the secret was shown")
	}
	if code, out, errs := ctl(t, ts, token, "settings", "oidc", "--issuer", "http://idp.example"); code == 0 {
		t.Fatalf("a plain http issuer was accepted: %s %s", out, errs)
	}
	if code, out, errs := ctl(t, ts, token, "settings", "oidc", "--off"); code != 0 || !strings.Contains(out, "off") {
		t.Fatalf("off: %d %s %s", code, out, errs)
	}
}
