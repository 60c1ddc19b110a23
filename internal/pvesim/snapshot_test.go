package pvesim

import (
	"regexp"
	"strings"
	"testing"
)

func TestPctSnapshots(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	tmpl := "local:vztmpl/" + debian
	s.ok("pct", "create", "120", tmpl, "--rootfs", "local-lvm:4", "--memory", "256")
	s.fails("unable to use snapshot name 'current' (reserved name)", "pct", "snapshot", "120", "current")
	s.ok("pct", "snapshot", "120", "before", "--description", "first\nsecond line")
	s.fails("snapshot name 'before' already used", "pct", "snapshot", "120", "before")
	s.ok("pct", "set", "120", "--memory", "2048")
	s.ok("pct", "snapshot", "120", "after")
	tree := s.ok("pct", "listsnapshot", "120")
	// Name column: 30 minus the prefix width, then one space.
	stamp := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`
	want := regexp.MustCompile("^`-> before {22}" + stamp + " {5}first\n" +
		" `-> after {22}" + stamp + " {5}no-description\n" +
		"  `-> current {19} {23} You are here!\n$")
	if !want.MatchString(tree) {
		t.Fatalf("listsnapshot:\n%s", tree)
	}
	// Rollback restores the snapshot's config and hard-stops, then --start.
	s.ok("pct", "start", "120")
	s.ok("pct", "rollback", "120", "before")
	if got := s.ok("pct", "status", "120"); got != "status: stopped\n" {
		t.Fatalf("after rollback: %q", got)
	}
	if cfg := s.ok("pct", "config", "120"); !strings.Contains(cfg, "memory: 256\n") {
		t.Fatalf("rollback config:\n%s", cfg)
	}
	s.ok("pct", "rollback", "120", "after", "--start")
	if got := s.ok("pct", "status", "120"); got != "status: running\n" {
		t.Fatalf("rollback --start: %q", got)
	}
	// Deleting a snapshot moves its children up.
	s.ok("pct", "delsnapshot", "120", "before")
	if tree := s.ok("pct", "listsnapshot", "120"); !strings.HasPrefix(tree, "`-> after ") || !strings.Contains(tree, " `-> current") {
		t.Fatalf("after delsnapshot:\n%s", tree)
	}
	s.fails("snapshot 'before' does not exist", "pct", "delsnapshot", "120", "before")
	s.fails("snapshot 'x' does not exist", "pct", "rollback", "120", "x")
	// A root disk on a dir storage cannot snapshot.
	s.ok("pct", "create", "121", tmpl, "--rootfs", "local-lvm:4")
	(&Store{Dir: s.dir, Node: "pve", LockTimeout: 1e9}).Update(func(n *Node) error {
		n.Storages = append(n.Storages, Storage{ID: "plain", Type: "dir", Content: []string{"rootdir"}})
		n.CTs[121].Config["rootfs"] = "plain:121/vm-121-disk-0.raw,size=4G"
		return nil
	})
	s.fails("snapshot feature is not available", "pct", "snapshot", "121", "s1")
	if tree := s.ok("pct", "listsnapshot", "121"); !regexp.MustCompile("^`-> current {21} {23} You are here!\n$").MatchString(tree) {
		t.Fatalf("no snapshots: %q", tree)
	}
}
