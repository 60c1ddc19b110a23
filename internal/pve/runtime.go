package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/internal/nat"
)

// Runtime is everything Proximity does on one Proxmox node. Every method
// honours its context's deadline and applies a default one when the
// context has none. Failures are *Error values whose Kind is one of this
// package's sentinels when the Proxmox text is known.
type Runtime interface {
	// Containers lists the containers on this node.
	Containers(ctx context.Context) ([]Container, error)
	// UsedVMIDs lists every VMID in use in the Proxmox cluster, VMs too.
	UsedVMIDs(ctx context.Context) ([]int, error)
	// Status reads a container's state and usage counters.
	Status(ctx context.Context, vmid int) (Container, error)
	// Node reads the node's capacity and free resources.
	Node(ctx context.Context) (NodeStatus, error)
	// Storages lists the node's storages that are enabled and active,
	// with what they hold and their capacity.
	Storages(ctx context.Context) ([]Storage, error)

	Create(ctx context.Context, spec CreateSpec) error
	Start(ctx context.Context, vmid int) error
	// Stop stops at once; Shutdown asks the container to stop and waits up
	// to timeoutSec before Proxmox gives up ("container did not stop").
	Stop(ctx context.Context, vmid int) error
	Shutdown(ctx context.Context, vmid int, timeoutSec int) error
	Reboot(ctx context.Context, vmid int) error
	// Destroy removes a container and its disks; force stops it first.
	Destroy(ctx context.Context, vmid int, force bool) error
	// Unlock removes a container's lock (pct unlock): only for a lock
	// whose task is known to be dead.
	Unlock(ctx context.Context, vmid int) error
	Clone(ctx context.Context, vmid, newid int, opts CloneOptions) error

	Snapshot(ctx context.Context, vmid int, name, description string) error
	DeleteSnapshot(ctx context.Context, vmid int, name string) error
	Rollback(ctx context.Context, vmid int, name string, start bool) error
	Snapshots(ctx context.Context, vmid int) ([]SnapshotInfo, error)

	// Backup runs vzdump and returns the archive's volume ID.
	Backup(ctx context.Context, vmid int, opts BackupOptions) (string, error)
	// Restore creates (or, with force, replaces) vmid from an archive.
	Restore(ctx context.Context, vmid int, volid string, opts RestoreOptions) error
	// Backups lists the archives on a storage, of one VMID when vmid > 0.
	Backups(ctx context.Context, storage string, vmid int) ([]BackupFile, error)
	DeleteBackup(ctx context.Context, volid string) error

	// Exec runs a command in a running container. A command that runs and
	// fails is not an error: its exit code is in the result.
	Exec(ctx context.Context, vmid int, argv ...string) (ExecResult, error)
	// ExecStream runs a command in a running container like Exec, but
	// hands each line of its standard output to line as it comes (without
	// the newline; a line over MaxStreamLine bytes is cut there). It has
	// no default deadline: it runs until the command ends, line returns an
	// error (returned as is), or ctx ends; then the command is killed. The
	// result's Stdout is empty; Stderr is its last 4 KiB.
	ExecStream(ctx context.Context, vmid int, argv []string, line func(string) error) (ExecResult, error)
	// Push writes a file into a running container.
	Push(ctx context.Context, vmid int, content []byte, dest, perms string) error

	Config(ctx context.Context, vmid int) (map[string]string, error)
	// SetConfig sets keys and deletes others (pct set --delete).
	SetConfig(ctx context.Context, vmid int, set map[string]string, del []string) error

	// Templates lists the templates downloaded to a storage (file names).
	Templates(ctx context.Context, storage string) ([]string, error)
	// AvailableTemplates lists the system templates pveam can download.
	AvailableTemplates(ctx context.Context) ([]string, error)
	DownloadTemplate(ctx context.Context, storage, name string) error

	// SetForwards replaces the node's port forwards (the nftables table
	// Proximity owns) with forwards.
	SetForwards(ctx context.Context, forwards []nat.Forward) error

	// ActiveTasks lists the node's running tasks for a VMID.
	ActiveTasks(ctx context.Context, vmid int) ([]TaskInfo, error)
	// WaitTask waits for a task to end and returns its failure, if any.
	WaitTask(ctx context.Context, upid string) error
}

// Container is a container's state as the node reports it. Counters a
// stopped container or an old Proxmox does not report are zero.
type Container struct {
	VMID     int     `json:"vmid"`
	Name     string  `json:"name"`
	Status   string  `json:"status"` // running, stopped
	Lock     string  `json:"lock,omitempty"`
	Tags     string  `json:"tags,omitempty"`
	Template bool    `json:"template,omitempty"`
	CPUs     float64 `json:"cpus"`
	CPU      float64 `json:"cpu"` // fraction of CPUs in use
	Mem      uint64  `json:"mem"`
	MaxMem   uint64  `json:"maxmem"`
	Disk     uint64  `json:"disk"`
	MaxDisk  uint64  `json:"maxdisk"`
	NetIn    uint64  `json:"netin"`
	NetOut   uint64  `json:"netout"`
	Uptime   uint64  `json:"uptime"`
}

// HasTag reports whether the container carries tag (tags are ";" or ","
// separated).
func (c Container) HasTag(tag string) bool {
	for _, t := range strings.FieldsFunc(c.Tags, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		if t == tag {
			return true
		}
	}
	return false
}

// Storage is one of the node's Proxmox storages.
type Storage struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Content   []string `json:"content"` // rootdir, images, vztmpl, backup, iso, ...
	Total     uint64   `json:"total"`
	Available uint64   `json:"available"`
	// Shared storages are reachable from every node of the Proxmox
	// cluster (NFS, CIFS, Ceph, PBS, ...); the others only from their own.
	Shared bool `json:"shared"`
}

// Holds reports whether the storage takes content of the given kind.
func (s Storage) Holds(content string) bool {
	for _, c := range s.Content {
		if c == content {
			return true
		}
	}
	return false
}

// NodeStatus is the node's capacity.
type NodeStatus struct {
	MemTotal  uint64 `json:"mem_total"`
	MemFree   uint64 `json:"mem_free"`
	DiskTotal uint64 `json:"disk_total"`
	DiskFree  uint64 `json:"disk_free"`
	CPUs      int    `json:"cpus"`
	Version   string `json:"version"`
}

// CreateSpec is a new container.
type CreateSpec struct {
	VMID     int
	Template string // volume ID, e.g. local:vztmpl/debian-13-standard_13.6-1_amd64.tar.zst
	Hostname string
	Cores    int
	MemoryMB int
	SwapMB   int
	// RootFS is "storage:GiB", e.g. local-lvm:8.
	RootFS       string
	Net0         string
	Nameserver   string
	Password     string
	Unprivileged bool
	Features     string // e.g. nesting=1,keyctl=1
	Tags         []string
	Description  string
	OnBoot       bool
}

// CloneOptions are pct clone's options.
type CloneOptions struct {
	Hostname string
	Snapshot string
	Full     bool
	Storage  string
}

// BackupOptions are vzdump's options.
type BackupOptions struct {
	Storage  string // default local
	Mode     string // snapshot, suspend, stop; default snapshot
	Compress string // zstd by default
	Notes    string
}

// RestoreOptions are pct restore's options.
type RestoreOptions struct {
	Storage  string
	Force    bool
	Unique   bool
	Hostname string
	// Net0 replaces the backed-up net0 (pct restore merges given
	// configuration over the archive's).
	Net0 string
}

// SnapshotInfo is one snapshot.
type SnapshotInfo struct {
	Name        string `json:"name"`
	Parent      string `json:"parent,omitempty"`
	Description string `json:"description,omitempty"`
	Time        int64  `json:"snaptime,omitempty"`
}

// BackupFile is a vzdump archive on a storage.
type BackupFile struct {
	Volid     string `json:"volid"`
	VMID      int    `json:"vmid"`
	Size      uint64 `json:"size"`
	Ctime     int64  `json:"ctime"`
	Notes     string `json:"notes,omitempty"`
	Protected bool   `json:"protected,omitempty"`
}

// ExecResult is a command's output and exit code.
type ExecResult struct {
	Stdout string
	Stderr string
	Code   int
}

// TaskInfo is a Proxmox task.
type TaskInfo struct {
	UPID       string
	Type       string
	ID         string
	Status     string // running, stopped
	ExitStatus string
}

// num decodes the API's numbers tolerantly: a JSON number, a numeric
// string ("100", older PVE), null or a missing field (zero).
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("not a number: %s", b)
	}
	*n = num(f)
	return nil
}

// u64 is n as a counter: a negative value is 0, one past the largest
// counter is the largest (Go's conversion of an out-of-range float is
// implementation-defined).
func (n num) u64() uint64 {
	switch {
	case n <= 0:
		return 0
	case n >= 1<<64:
		return math.MaxUint64
	}
	return uint64(n)
}

// int is n as an int (a VMID, a count), 0 when negative or out of range.
func (n num) int() int {
	if n <= 0 || n >= 1<<62 {
		return 0
	}
	return int(n)
}

// str decodes a JSON string or number as a string (config values).
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err == nil {
		*s = str(v)
		return nil
	}
	*s = str(strings.TrimSpace(string(b)))
	return nil
}
