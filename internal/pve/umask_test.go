package pve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestToolsRunWithTheirUmask: with ToolUmask the tools get umask 022
// whatever the agent's own (its unit sets 0077); without it they inherit
// the agent's.
func TestToolsRunWithTheirUmask(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(dir, "pct")); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		toolUmask bool
		want      string
	}{{true, "0022"}, {false, "0077"}} {
		l := &Local{opt: Options{BinDir: dir, WorkDir: dir, ToolUmask: tc.toolUmask}}
		out, errs, code, err := l.run(context.Background(), 10*time.Second, "pct", "-c", "umask")
		if err != nil || code != 0 {
			t.Fatalf("ToolUmask %v: %v, exit %d, %s", tc.toolUmask, err, code, errs)
		}
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("ToolUmask %v: the tool ran with umask %s, want %s", tc.toolUmask, got, tc.want)
		}
	}
}
