package main

import (
	"strings"
	"testing"
)

// TestAppMoveNeedsNode: `app move` refuses to run without --node (it
// would restore in place), `app restore` and `app move` both reach the
// restore route (a missing app is the server's 404), and `backup restore`
// takes --node too.
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
	for _, top := range []string{"app", "backup"} {
		if code, out, _ := ctl(t, ts, token, top, "restore", "--help"); code != 0 || !strings.Contains(out, "--node") {
			t.Fatalf("%s restore --help: %d %s", top, code, out)
		}
	}
}
