package pvesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A shared storage (Storage.Shared) is one that several nodes reach, as
// an NFS, CIFS or Proxmox Backup Server storage is in a Proxmox cluster.
// The simulator keeps its archives outside every node's state: in
// <Path>/pvesim-archives.json, under an exclusive flock of
// <Path>/pvesim-archives.lock, so every simulated node whose storage of
// that name is shared and has the same Path sees the same archives. A
// storage that is not shared keeps its archives in its node's state, and
// only that node sees them.
const (
	sharedArchives = "pvesim-archives.json"
	sharedLock     = "pvesim-archives.lock"
)

// storageOf is the storage ID of a volume ID ("local:backup/x" → "local").
func storageOf(volid string) string {
	id, _, _ := strings.Cut(volid, ":")
	return id
}

// withArchives runs fn on the archives of storage: the node's own list,
// or the shared storage's list, which is saved afterwards if write is set
// and fn returned nil. The node's state lock is held by the caller, and
// a shared list's lock is always taken after it, never before.
func (n *Node) withArchives(storage string, write bool, fn func(list *[]Backup) error) error {
	s, ok := n.Storage(storage)
	if !ok || !s.Shared || s.Path == "" {
		return fn(&n.Backups)
	}
	if err := os.MkdirAll(s.Path, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.Path, sharedLock), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("can't lock file '%s' - got timeout", f.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	path := filepath.Join(s.Path, sharedArchives)
	var list []Backup
	switch b, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	if err := fn(&list); err != nil || !write {
		return err
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// backup returns a copy of the archive volid, or nil if the storage it
// names holds none of that name (as this node sees the storage).
func (n *Node) backup(volid string) *Backup {
	var out *Backup
	_ = n.withArchives(storageOf(volid), false, func(list *[]Backup) error {
		for _, b := range *list {
			if b.Volid == volid {
				cp := b
				out = &cp
			}
		}
		return nil
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
