package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestVersionStringNamesVersionAndCommit(t *testing.T) {
	if got := String("0.4.0", "abc123"); got != "0.4.0 (commit abc123)" {
		t.Errorf("String = %q", got)
	}
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	if got := vcsRevision(stamped); got != "0123456789ab-dirty" {
		t.Errorf("vcsRevision = %q", got)
	}
	none := func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{}, true }
	if got := vcsRevision(none); got != "" {
		t.Errorf("vcsRevision without a stamp = %q", got)
	}
}
