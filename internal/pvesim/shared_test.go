package pvesim

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedStorageArchivesSeenByEveryNode: an archive vzdump writes to a
// shared storage can be restored on another node that has the storage
// (with a new net0 and MAC, as a move does), while one on "local" stays
// its node's; deleting it through one node removes it for all.
func TestSharedStorageArchivesSeenByEveryNode(t *testing.T) {
	a, b := newSim(t), newSim(t)
	shared := filepath.Join(t.TempDir(), "nfs")
	for _, s := range []*sim{a, b} {
		st, _ := Open(s.dir, "pve")
		if err := st.Update(func(n *Node) error {
			n.Storages = append(n.Storages, Storage{ID: "nfs", Type: "nfs", Content: []string{"backup"}, Path: shared, Shared: true})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	a.withTemplate()
	a.ok("pct", "create", "100", "local:vztmpl/"+debian, "--rootfs", "local-lvm:4", "--hostname", "web", "--net0", "name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1")
	a.ok("vzdump", "100", "--storage", "nfs")
	a.ok("vzdump", "100", "--storage", "local")
	var onNFS, onLocal string
	st, _ := Open(a.dir, "pve")
	_ = st.View(func(n *Node) error {
		for _, x := range n.Backups {
			onLocal = x.Volid
		}
		return nil
	})
	_ = st.View(func(n *Node) error {
		return n.withArchives("nfs", false, func(l *[]Backup) error {
			for _, x := range *l {
				onNFS = x.Volid
			}
			return nil
		})
	})
	if !strings.HasPrefix(onNFS, "nfs:backup/vzdump-lxc-100-") || !strings.HasPrefix(onLocal, "local:backup/") {
		t.Fatalf("archives: nfs %q, local %q", onNFS, onLocal)
	}
	b.fails("volume '"+onLocal+"' does not exist", "pct", "restore", "200", onLocal)
	b.ok("pct", "restore", "200", onNFS, "--unique", "1", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp")
	if cfg := b.ok("pct", "config", "200"); !strings.Contains(cfg, "hostname: web") || !strings.Contains(cfg, "ip=dhcp") || strings.Contains(cfg, "10.0.0.5") {
		t.Fatalf("restored config on the other node:\n%s", cfg)
	}
	// Delete through the other node: gone for both.
	bst, _ := Open(b.dir, "pve")
	if err := bst.Update(func(n *Node) error {
		return n.withArchives("nfs", true, func(l *[]Backup) error { *l = nil; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	a.fails("volume '"+onNFS+"' does not exist", "pct", "restore", "300", onNFS)
}
