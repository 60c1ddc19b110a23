package pve

import (
	"errors"
	"testing"
)

// The texts are the ones listed in the Proxmox reference notes (section
// 1.5), verbatim.
func TestClassifyKnownTexts(t *testing.T) {
	cases := []struct {
		text       string
		kind       error
		vmid, lock string
	}{
		{"CT 100 already exists on node 'pve'", ErrExists, "100", ""},
		{"VM 104 already exists on node 'pve2'", ErrExists, "104", ""},
		{"unable to create CT 100 - CT 100 already exists on node 'pve'", ErrExists, "100", ""},
		{"unable to restore CT 101 - CT 101 already exists on node 'pve'", ErrExists, "101", ""},
		{"CT is locked (backup)", ErrLocked, "", "backup"},
		{"CT is locked (snapshot-delete)", ErrLocked, "", "snapshot-delete"},
		{"can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout", ErrLocked, "100", ""},
		{"CT 100 already running", ErrAlreadyRunning, "100", ""},
		{"CT 100 not running", ErrNotRunning, "100", ""},
		{"VM 100 not running", ErrNotRunning, "100", ""},
		{"container '100' not running!", ErrNotRunning, "100", ""},
		{"can only push files to a running CT", ErrNotRunning, "", ""},
		{"can only pull files from a running VM at /usr/share/perl5/PVE/CLI/pct.pm line 312.", ErrNotRunning, "", ""},
		{"unable to destroy CT 100 - container is running", ErrRunning, "100", ""},
		{"can't overwrite running container", ErrRunning, "", ""},
		{"can't remove CT 100 - protection mode enabled", ErrProtected, "100", ""},
		{"Configuration file 'nodes/pve/lxc/100.conf' does not exist", ErrNotFound, "100", ""},
		{"snapshot 'x' does not exist", ErrNotFound, "", ""},
		{"container did not stop", ErrTimeout, "", ""},
		{"snapshot feature is not available", ErrUnsupported, "", ""},
		{"you can't start a CT if it's a template", ErrUnsupported, "", ""},
		{"Full clone of a running container is only possible from a snapshot", ErrUnsupported, "", ""},
		{"snapshot name 'snap1' already used", ErrExists, "", ""},
		{"unable to use snapshot name 'current' (reserved name)", ErrExists, "", ""},
		{"400 Parameter verification failed.\nstorage: storage 'local' does not support container directories", ErrInvalid, "", ""},
		{"no options specified", ErrInvalid, "", ""},
	}
	for _, c := range cases {
		err := Classify(c.text + "\n")
		var pe *Error
		if !errors.As(err, &pe) || !errors.Is(err, c.kind) {
			t.Errorf("Classify(%q) = %v, want kind %v", c.text, err, c.kind)
			continue
		}
		if pe.VMID != c.vmid || pe.Lock != c.lock {
			t.Errorf("Classify(%q): vmid %q lock %q, want %q %q", c.text, pe.VMID, pe.Lock, c.vmid, c.lock)
		}
	}
}

func TestClassifyUnknownTextKeepsIt(t *testing.T) {
	if Classify("  \n") != nil {
		t.Fatal("empty text is not an error")
	}
	err := Classify("something new went wrong")
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != nil || pe.Text != "something new went wrong" {
		t.Fatalf("unknown text: %#v", err)
	}
	for _, k := range []error{ErrExists, ErrNotFound, ErrLocked, ErrNotRunning, ErrTimeout} {
		if errors.Is(err, k) {
			t.Fatalf("unknown text matched %v", k)
		}
	}
}
