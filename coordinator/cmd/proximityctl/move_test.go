package main

import (
	"strings"
	"testing"
)

// TestAppMoveNeedsNode: `app move` refuses to run without --node (it
// would restore in place), and `app restore` and `app move` both reach
// the restore route (a missing app is the server's 404).
func TestAppMoveNeedsNode(t *testing.T) {
	ts, token := startServer(t)
	if code, _, errs := ctl(t, ts, token, "app", "move", "app_nothing", "bak_x"); code == 0 || !strings.Contains(errs, "--node is required") {
		t.Fatalf("move without --node: %d %q", code, errs)
	}
	for _, verb := range []string{"move", "restore"} {
		if code, _, errs := ctl(t, ts, token, "app", verb, "app_nothing", "bak_x", "--node", "pve2"); code == 0 || !strings.Contains(errs, "app_nothing does not exist") {
			t.Fatalf("%s of a missing app: %d %q", verb, code, errs)
		}
	}
	if code, out, _ := ctl(t, ts, token, "app", "restore", "--help"); code != 0 || !strings.Contains(out, "--node") {
		t.Fatalf("app restore --help: %d %s", code, out)
	}
}
