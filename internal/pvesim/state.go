package pvesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Storage is a Proxmox storage as `pvesm status` would list it.
type Storage struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`    // dir, lvmthin
	Content []string `json:"content"` // vztmpl, backup, iso, rootdir, images
	Path    string   `json:"path,omitempty"`
	// Shared storages are reached by several nodes (shared.go).
	Shared bool `json:"shared,omitempty"`
}

// Supports reports whether the storage holds the given content type.
func (s Storage) Supports(content string) bool {
	for _, c := range s.Content {
		if c == content {
			return true
		}
	}
	return false
}

// CT is one container.
type CT struct {
	VMID   int               `json:"vmid"`
	Config map[string]string `json:"config"`
	Status string            `json:"status"` // running, stopped
	Lock   string            `json:"lock,omitempty"`
	PID    int               `json:"pid,omitempty"`
	Uptime int64             `json:"started_at,omitempty"`
	// Snapshots by name; Parent is the snapshot "current" descends from.
	Snapshots map[string]*Snapshot `json:"snapshots,omitempty"`
	Parent    string               `json:"parent,omitempty"`
	// Files are files inside the container (pushed or written by exec),
	// path → content.
	Files map[string]string `json:"files,omitempty"`
	// NetIn and NetOut count bytes for the status counters.
	NetIn  int64 `json:"netin,omitempty"`
	NetOut int64 `json:"netout,omitempty"`
}

// Snapshot is a saved configuration (the simulator keeps no disk data).
type Snapshot struct {
	Parent      string            `json:"parent,omitempty"`
	Time        int64             `json:"snaptime"`
	Description string            `json:"description,omitempty"`
	Config      map[string]string `json:"config"`
}

// Task is a finished or running worker.
type Task struct {
	UPID   string `json:"upid"`
	Type   string `json:"type"`
	ID     string `json:"id"`
	User   string `json:"user"`
	Status string `json:"status"` // running, stopped
	Exit   string `json:"exitstatus,omitempty"`
	Owner  int    `json:"owner"` // OS process running the worker
	Start  int64  `json:"starttime"`
	End    int64  `json:"endtime,omitempty"`
	// Hung marks a worker the hang fault holds: it never ends by itself
	// (a change of the faults does not release it); killing its process,
	// as an admin stops a task, ends it as a worker that died.
	Hung bool `json:"hung,omitempty"`
}

// Backup is a vzdump archive on a storage. The simulator keeps the
// container's configuration in it, which is what a restore reads back.
type Backup struct {
	Volid     string            `json:"volid"`
	VMID      int               `json:"vmid"`
	Size      int64             `json:"size"`
	Ctime     int64             `json:"ctime"`
	Notes     string            `json:"notes,omitempty"`
	Protected bool              `json:"protected,omitempty"`
	Config    map[string]string `json:"config"`
	Files     map[string]string `json:"files,omitempty"`
}

// Node is the whole state of one simulated node.
type Node struct {
	Name      string              `json:"name"`
	Storages  []Storage           `json:"storages"`
	CTs       map[int]*CT         `json:"cts"`
	VMs       []int               `json:"vms"`       // qemu guests using VMIDs
	Available []string            `json:"available"` // templates pveam can download
	Templates map[string][]string `json:"templates"` // storage → downloaded template files
	Tasks     []Task              `json:"tasks"`
	Backups   []Backup            `json:"backups"`
	NextPID   int                 `json:"next_pid"`
	Faults    Faults              `json:"faults"`
	// Ruleset is the node's nftables ruleset as the last `nft -f` left it.
	Ruleset string `json:"ruleset,omitempty"`
	// MemoryMB and DiskGB are the node's capacity.
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

// Storage returns a storage by ID.
func (n *Node) Storage(id string) (Storage, bool) {
	for _, s := range n.Storages {
		if s.ID == id {
			return s, true
		}
	}
	return Storage{}, false
}

// VMIDs returns the container VMIDs in order.
func (n *Node) VMIDs() []int {
	out := make([]int, 0, len(n.CTs))
	for id := range n.CTs {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// Store is a node's state directory.
type Store struct {
	Dir  string
	Node string
	// LockTimeout bounds the wait for the state lock (Proxmox waits 10 s
	// for a config lock).
	LockTimeout time.Duration
}

// Open returns the store for dir and node name (default "pve").
func Open(dir, node string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("PVESIM_DIR is not set")
	}
	if node == "" {
		node = "pve"
	}
	return &Store{Dir: dir, Node: node, LockTimeout: 10 * time.Second}, nil
}

func (s *Store) statePath() string { return filepath.Join(s.Dir, "state.json") }

// Init prepares a node like a fresh Proxmox install. It refuses to
// overwrite an existing state.
func (s *Store) Init() error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "tasks"), 0o755); err != nil {
		return err
	}
	return s.update(true, func(n *Node) error {
		if n.Name != "" {
			return fmt.Errorf("%s is already initialized for node %s", s.Dir, n.Name)
		}
		*n = Node{
			Name: s.Node,
			Storages: []Storage{
				{ID: "local", Type: "dir", Content: []string{"vztmpl", "backup", "iso"}, Path: "/var/lib/vz"},
				{ID: "local-lvm", Type: "lvmthin", Content: []string{"rootdir", "images"}},
			},
			CTs: map[int]*CT{},
			Available: []string{
				"debian-12-standard_12.12-1_amd64.tar.zst",
				"debian-13-standard_13.6-1_amd64.tar.zst",
				"alpine-3.24-default_20260714_amd64.tar.xz",
			},
			Templates: map[string][]string{},
			NextPID:   4096,
			MemoryMB:  65536,
			DiskGB:    1024,
		}
		return nil
	})
}

// Update runs fn on the state under an exclusive lock and saves it if fn
// returns nil.
func (s *Store) Update(fn func(n *Node) error) error { return s.update(false, fn) }

// View runs fn on the state under the lock without saving.
func (s *Store) View(fn func(n *Node) error) error {
	return s.withLock(func() error {
		n, err := s.load(false)
		if err != nil {
			return err
		}
		return fn(n)
	})
}

func (s *Store) update(allowEmpty bool, fn func(n *Node) error) error {
	return s.withLock(func() error {
		n, err := s.load(allowEmpty)
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
		b, err := json.MarshalIndent(n, "", "  ")
		if err != nil {
			return err
		}
		tmp := s.statePath() + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, s.statePath())
	})
}

func (s *Store) load(allowEmpty bool) (*Node, error) {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		if allowEmpty {
			return &Node{}, nil
		}
		return nil, fmt.Errorf("%s has no simulated node; run `pvesim init`", s.Dir)
	}
	if err != nil {
		return nil, err
	}
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	if n.CTs == nil {
		n.CTs = map[int]*CT{}
	}
	if n.Templates == nil {
		n.Templates = map[string][]string{}
	}
	n.reapTasks()
	return &n, nil
}

// withLock holds an exclusive flock on the state directory's lock file.
func (s *Store) withLock(fn func() error) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "state.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(s.LockTimeout)
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
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
