package lxcfit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/catalog"
)

func TestSubst(t *testing.T) {
	known := map[string]string{"AppID": "notes", "APP_DATA_DIR": "/opt/proximity/data/notes"}
	resolve := func(n string) (string, bool) { v, ok := known[n]; return v, ok }
	for in, want := range map[string]string{
		"/DATA/AppData/$AppID/x":       "/DATA/AppData/notes/x",
		"${APP_DATA_DIR}/data":         "/opt/proximity/data/notes/data",
		"$TZ":                          "${TZ}",
		"${TZ}":                        "${TZ}",
		"${PORT:-8080}":                "${PORT:-8080}",
		"cost: $$5":                    "cost: $$5",
		"a$":                           "a$",
		"${":                           "${",
		"${1X}":                        "${1X}",
		"$PUID:$PGID":                  "${PUID}:${PGID}",
		"postgres://u:$PW@db/${AppID}": "postgres://u:${PW}@db/notes",
	} {
		if got := Subst(in, resolve); got != want {
			t.Errorf("Subst(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnpinnedImages(t *testing.T) {
	for image, pinned := range map[string]bool{
		"nginx:1.27.2":            true,
		"ghcr.io/org/app:v2.0.1":  true,
		"registry:5000/app:3.1":   true,
		"app:1.0@sha256:abc":      true,
		"nginx":                   false,
		"nginx:latest":            false,
		"nginx:stable":            false,
		"registry:5000/app":       false,
		"app@sha256:abc":          false,
		"app:${TAG}":              false,
		"":                        false,
		"ghcr.io/org/app:NIGHTLY": false,
	} {
		if got := unpinned(image) == ""; got != pinned {
			t.Errorf("%q pinned = %v, want %v (%s)", image, got, pinned, unpinned(image))
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{
		"8080:80":             "8080:80/tcp",
		"53:53/udp":           "53:53/udp",
		"80":                  "80:80/tcp",
		"0.0.0.0:81:80":       "81:80/tcp",
		"${WEB:-9000}:80":     "9000:80/tcp",
		"${WEB}:80":           "80:80/tcp",
		"127.0.0.1:5432:5432": "loopback 5432",
	} {
		p, ok := parsePort(in)
		if !ok {
			t.Errorf("%q not read", in)
			continue
		}
		got := p.published + ":" + itoa(p.target) + "/" + p.proto
		if p.loopback {
			got = "loopback " + p.published
		}
		if got != want {
			t.Errorf("%q = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []any{"8000-8010:8000-8010", "x:y", "80/sctp", "70000:80", map[string]any{"target": "no"}} {
		if _, ok := parsePort(bad); ok {
			t.Errorf("%v read", bad)
		}
	}
}

func itoa(n int) string { return Str(float64(n)) }

func TestMemBytes(t *testing.T) {
	for in, want := range map[string]int64{"512M": 512 << 20, "1g": 1 << 30, "1.5GB": 3 << 29, "64m": 64 << 20, "1048576": 1 << 20, "lots": 0, "": 0} {
		if got := memBytes(in); got != want {
			t.Errorf("memBytes(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestSafeCapabilitiesAreDockersDefaults pins the documented list: adding
// one of these changes nothing in a container, so it runs in LXC.
func TestSafeCapabilitiesAreDockersDefaults(t *testing.T) {
	want := []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
		"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
	if d := cmp.Diff(want, SafeCapabilities()); d != "" {
		t.Error(d)
	}
}

func TestHostPathRules(t *testing.T) {
	for src, want := range map[string]string{
		"/opt/proximity/data/app/x": "/opt/proximity/data/app/x",
		"./config":                  "/opt/proximity/data/app/config",
		"/var/run/docker.sock":      "/var/run/docker.sock (degraded)",
		"/etc/localtime":            "dropped (degraded)",
		"/dev/dri/renderD128":       "dropped (degraded)",
		"/mnt/disk1/films":          "/opt/proximity/data/app/host/mnt/disk1/films (degraded)",
		"/etc/ssl":                  "rejected",
		"/":                         "rejected",
		"/sys/class/net":            "rejected",
		"/var/lib/docker":           "rejected",
		"${SOMEWHERE}/x":            "rejected",
		"./a/../b":                  "/opt/proximity/data/app/b",
	} {
		f := &fitter{app: App{ID: "app", File: "f"}}
		dst, drop := f.hostPath("v", src)
		got := dst
		if drop {
			got = "dropped"
		}
		if f.rejected {
			got = "rejected"
		} else if len(f.problems) > 0 {
			got += " (degraded)"
		}
		if got != want {
			t.Errorf("%s: %s, want %s (%+v)", src, got, want, f.problems)
		}
		if strings.Contains(got, "rejected") && (len(f.problems) != 1 || f.problems[0].Reason == "") {
			t.Errorf("%s: rejected without one reason: %+v", src, f.problems)
		}
	}
}

func TestGuardRejectsOnlyTheAppThatFails(t *testing.T) {
	var c Collector
	c.Guard("bad", "Apps/Bad/x.yml", func() (catalog.Entry, []catalog.Problem, bool) { panic("boom") })
	c.Guard("good", "Apps/Good/x.yml", func() (catalog.Entry, []catalog.Problem, bool) {
		return catalog.Entry{ID: "good"}, nil, true
	})
	r := c.Result()
	if len(r.Entries) != 1 || r.Entries[0].ID != "good" {
		t.Fatalf("entries: %+v", r.Entries)
	}
	if len(r.Problems) != 1 || !r.Problems[0].Rejected || r.Problems[0].Field != "(importer)" || !strings.Contains(r.Problems[0].Reason, "boom") {
		t.Fatalf("problems: %+v", r.Problems)
	}
}

// TestFuzzFitRelativeMountsStayInTheDataFolder: a relative bind mount
// source that climbs out of the app's data folder ("./../../../../etc",
// "../..", "$X/../../../../../../etc") is rejected; it was joined to the
// data folder and came out as /etc or /opt/proximity, past the system
// path rule (found by FuzzFit; the inputs are in testdata/fuzz).
func TestFuzzFitRelativeMountsStayInTheDataFolder(t *testing.T) {
	for _, src := range []string{"./../../../../etc", "./x/../../../..", "..", "../..", "../../../../../etc", "$X/../../../../../../etc", "$X/../../../.."} {
		f := &fitter{app: App{ID: "app", File: "f"}}
		dst, _ := f.hostPath("v", src)
		if !f.rejected || len(f.problems) != 1 || !strings.Contains(f.problems[0].Reason, "leaves the app's data folder") {
			t.Errorf("%s: mapped to %s, problems %+v; want a rejection", src, dst, f.problems)
		}
	}
	for src, want := range map[string]string{"../app/x": "/opt/proximity/data/app/x", "$X/y": "/opt/proximity/data/app/host/$X/y"} {
		f := &fitter{app: App{ID: "app", File: "f"}}
		if dst, _ := f.hostPath("v", src); f.rejected || dst != want {
			t.Errorf("%s: %s (rejected %v), want %s", src, dst, f.rejected, want)
		}
	}
}
