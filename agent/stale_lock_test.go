package agent

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// TestCloneAfterACrashedCloneLiftsTheSourcesLock: a clone whose worker
// died leaves its source locked "disk" (as Proxmox does); the next clone
// of that source lifts the lock no task holds and succeeds, instead of
// failing "CT is locked (disk)" for good (found by the nemesis, SEED=31).
// The same for a backup's "backup"; a lock a running task holds stays.
func TestCloneAfterACrashedCloneLiftsTheSourcesLock(t *testing.T) {
	h := startPolicyNode(t, Policy{})
	const src = 100
	h.mustRun(t, taskspec.Create, src, taskspec.CreateSpec{Template: "debian-13-standard_13.6-1_amd64.tar.zst", Hostname: "web",
		MemoryMB: 512, DiskGB: 2, Net0: "name=eth0,bridge=vmbr0,ip=dhcp"})
	lock := func() string {
		var l string
		_ = h.sim.Store.View(func(n *pvesim.Node) error { l = n.CTs[src].Lock; return nil })
		return l
	}
	if err := h.sim.Store.SetFaults(pvesim.Faults{Crash: []string{"vzclone"}}); err != nil {
		t.Fatal(err)
	}
	if res, _ := h.run(t, taskspec.Clone, src, taskspec.CloneSpec{NewVMID: 101, Hostname: "copy"}); res.Ok {
		t.Fatal("a clone whose worker crashed succeeded")
	}
	if l := lock(); l != "disk" {
		t.Fatalf("the crashed clone left the source's lock %q, want disk", l)
	}
	if err := h.sim.Store.SetFaults(pvesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.mustRun(t, taskspec.Clone, src, taskspec.CloneSpec{NewVMID: 102, Hostname: "copy2"})
	if l := lock(); l != "" {
		t.Fatalf("the source keeps the lock %q after a clone that succeeded", l)
	}
	// A backup whose worker died leaves "backup"; the next backup lifts it.
	if err := h.sim.Store.SetFaults(pvesim.Faults{Crash: []string{"vzdump"}}); err != nil {
		t.Fatal(err)
	}
	if res, _ := h.run(t, taskspec.Backup, src, taskspec.BackupSpec{}); res.Ok {
		t.Fatal("a backup whose worker crashed succeeded")
	}
	if l := lock(); l != "backup" {
		t.Fatalf("the crashed backup left the lock %q, want backup", l)
	}
	if err := h.sim.Store.SetFaults(pvesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.mustRun(t, taskspec.Backup, src, taskspec.BackupSpec{})
	if l := lock(); l != "" {
		t.Fatalf("the container keeps the lock %q after a backup that succeeded", l)
	}
	// A lock a running task holds is left alone: with a clone of the
	// source listed as running, a clone fails as locked and the lock stays.
	now := time.Now().Unix()
	if err := h.sim.Store.Update(func(n *pvesim.Node) error {
		n.CTs[src].Lock = "disk"
		n.Tasks = append(n.Tasks, pvesim.Task{UPID: fmt.Sprintf("UPID:pve1:%08X:00000000:%08X:vzclone:%d:root@pam:", os.Getpid(), now, src),
			Type: "vzclone", ID: fmt.Sprint(src), User: "root@pam", Status: "running", Owner: os.Getpid(), Start: now})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, _ := h.run(t, taskspec.Clone, src, taskspec.CloneSpec{NewVMID: 103, Hostname: "copy3"})
	if res.Ok || res.ErrorKind != "locked" {
		t.Fatalf("a clone beside a running one: ok=%v %q (%s), want locked", res.Ok, res.Error, res.ErrorKind)
	}
	if l := lock(); l != "disk" {
		t.Fatalf("the lock of a running clone was lifted (%q)", l)
	}
}
