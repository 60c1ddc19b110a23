// Package buildinfo says which build a binary is, for every binary's
// --version: the version that the Makefile stamps into each main package
// with -ldflags "-X main.version=… -X main.commit=…" (one source: the
// Makefile's VERSION, which the Debian packages use too), and the commit,
// stamped or else read from the Go toolchain's VCS stamp.
package buildinfo

import "runtime/debug"

// String is "VERSION (commit REV)", or VERSION alone when the commit is
// unknown; an empty version is "dev".
func String(version, commit string) string {
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = vcsRevision(debug.ReadBuildInfo)
	}
	if commit == "" {
		return version
	}
	return version + " (commit " + commit + ")"
}

// vcsRevision is the commit the go command stamped (builds inside a
// checkout), shortened to 12 hex digits and marked -dirty when the tree
// had changes; "" when there is none.
func vcsRevision(read func() (*debug.BuildInfo, bool)) string {
	bi, ok := read()
	if !ok {
		return ""
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}
