package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSettingsQuotasCommandLine: settings quotas shows the default quota;
// a flag changes only the limit it names.
func TestSettingsQuotasCommandLine(t *testing.T) {
	ts, token := startServer(t)
	get := func(args ...string) quota {
		t.Helper()
		code, out, errs := ctl(t, ts, token, append([]string{"settings", "quotas", "-o", "json"}, args...)...)
		var q quota
		if code != 0 || json.Unmarshal([]byte(out), &q) != nil {
			t.Fatalf("settings quotas %v: %d %s %s", args, code, out, errs)
		}
		return q
	}
	if q := get(); q != (quota{}) {
		t.Fatalf("the default quota is %+v, want unlimited", q)
	}
	if code, out, errs := ctl(t, ts, token, "settings", "quotas", "--max-apps", "3"); code != 0 ||
		!strings.Contains(out, "MAX APPS") || !strings.Contains(out, "3  ") || strings.Count(out, "unlimited") != 3 {
		t.Fatalf("settings quotas --max-apps 3: %d %s %s", code, out, errs)
	}
	if q := get("--max-cores", "8", "--max-memory-mb", "4096"); q != (quota{MaxApps: 3, MaxCores: 8, MaxMemoryMB: 4096}) {
		t.Fatalf("after --max-cores 8 --max-memory-mb 4096: %+v", q)
	}
	if q := get("--max-apps", "0", "--max-disk-gb", "50"); q != (quota{MaxCores: 8, MaxMemoryMB: 4096, MaxDiskGB: 50}) {
		t.Fatalf("after --max-apps 0 --max-disk-gb 50: %+v", q)
	}
	if q := get(); q != (quota{MaxCores: 8, MaxMemoryMB: 4096, MaxDiskGB: 50}) {
		t.Fatalf("shown: %+v", q)
	}
	if code, _, errs := ctl(t, ts, token, "settings", "quotas", "--max-cores", "-1"); code != 1 || !strings.Contains(errs, "max_cores") {
		t.Fatalf("--max-cores -1: %d %s", code, errs)
	}
	if q := get(); q.MaxCores != 8 {
		t.Fatalf("a refused change was stored: %+v", q)
	}
}
