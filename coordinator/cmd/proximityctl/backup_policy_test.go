package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBackupPolicyCommandLine: "backup policy APP" shows the policy in
// force, sets the fields its flags name (keeping the others), refuses a bad
// schedule naming the field, and --default goes back to the default;
// "settings backups" patches the default, and -o json is the API's JSON.
func TestBackupPolicyCommandLine(t *testing.T) {
	ts, token := startServerWithNode(t)
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "vaultwarden", "vault", "--wait"); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errs)
	}
	code, out, errs := ctl(t, ts, token, "backup", "policy", "vault")
	if code != 0 || !strings.Contains(out, "default") || !strings.Contains(out, "keep all") {
		t.Fatalf("policy: %d %s %s", code, out, errs)
	}
	code, out, errs = ctl(t, ts, token, "app", "backups", "policy", "vault", "--schedule", "mon..fri 21:00", "--keep-daily", "7", "--keep-weekly", "4")
	if code != 0 || !strings.Contains(out, "mon..fri 21:00") || !strings.Contains(out, "keep-daily=7,keep-weekly=4") || !strings.Contains(out, "app") {
		t.Fatalf("set policy: %d %s %s", code, out, errs)
	}
	// One flag changes one field.
	code, out, errs = ctl(t, ts, token, "backup", "policy", "vault", "--keep-last", "2", "-o", "json")
	var p backupPolicy
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Schedule != "mon..fri 21:00" || p.Retention != (retention{KeepLast: 2, KeepDaily: 7, KeepWeekly: 4}) || p.Source != "app" {
		t.Fatalf("keep-last: %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, `"next_run"`) || strings.Contains(out, "NextRun") {
		t.Fatalf("-o json is not the API's JSON: %s", out)
	}
	if code, _, errs = ctl(t, ts, token, "backup", "policy", "vault", "--schedule", "funday"); code != 1 || !strings.Contains(errs, "schedule") {
		t.Fatalf("bad schedule: %d %s", code, errs)
	}
	if code, out, errs = ctl(t, ts, token, "backup", "policy", "vault", "--default"); code != 0 || !strings.Contains(out, "default") {
		t.Fatalf("--default: %d %s %s", code, out, errs)
	}
	code, out, errs = ctl(t, ts, token, "settings", "backups", "--schedule", "daily", "--keep-daily", "14", "--timezone", "Europe/Berlin")
	if code != 0 || !strings.Contains(out, "daily") || !strings.Contains(out, "keep-daily=14") || !strings.Contains(out, "Europe/Berlin") {
		t.Fatalf("settings backups: %d %s %s", code, out, errs)
	}
	code, out, errs = ctl(t, ts, token, "settings", "backups", "--keep-last", "3")
	if code != 0 || !strings.Contains(out, "keep-last=3,keep-daily=14") || !strings.Contains(out, "Europe/Berlin") {
		t.Fatalf("settings backups keep-last: %d %s %s", code, out, errs)
	}
	if code, _, errs = ctl(t, ts, token, "settings", "backups", "--timezone", "Mars/Olympus"); code != 1 || !strings.Contains(errs, "timezone") {
		t.Fatalf("bad timezone: %d %s", code, errs)
	}
	if code, out, _ = ctl(t, ts, token, "backup", "policy", "vault"); code != 0 || !strings.Contains(out, "daily") || !strings.Contains(out, "keep-last=3,keep-daily=14") {
		t.Fatalf("policy from the default: %d %s", code, out)
	}
}
