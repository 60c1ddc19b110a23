// Package taskspec defines the work the coordinator hands to agents: the
// task kinds, the JSON spec of each, what a successful task outputs, and
// the error kinds a failed task reports. Both sides import it, so the
// contract lives in one place.
package taskspec

import (
	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// Task kinds.
const (
	Create           = "create"
	Start            = "start"
	Stop             = "stop"
	Shutdown         = "shutdown"
	Reboot           = "reboot"
	Destroy          = "destroy"
	Snapshot         = "snapshot"
	DeleteSnapshot   = "delete_snapshot"
	Rollback         = "rollback"
	Clone            = "clone"
	Backup           = "backup"
	Restore          = "restore"
	DeleteBackup     = "delete_backup"
	Exec             = "exec"
	Push             = "push"
	SetConfig        = "set_config"
	DownloadTemplate = "download_template"
	WriteEnv         = "write_env"
	Inspect          = "inspect"
	Forwards         = "forwards"
)

// ForwardsSpec is the whole set of port forwards a node should have. A set
// older (by Version, the log index it was computed at) than the one the
// agent applied last is ignored, so sets that cross on the way do not undo
// each other.
type ForwardsSpec struct {
	Version  uint64        `json:"version"`
	Forwards []nat.Forward `json:"forwards"`
}

// EnvSpec writes a Compose .env file into the container: fixed values,
// and secrets the agent generates itself (crypto/rand, URL-safe), so that
// no coordinator, log or Raft entry ever holds them. Every value is
// checked and quoted by internal/dotenv.
//
// Mode says what happens to an existing file:
//   - EnvCreate (""): an existing file is kept as it is, so a redelivered
//     task does not change the secrets.
//   - EnvUpdate: the existing file is saved as Path+".prev" (once per Op:
//     a redelivery starts again from that copy) and Values are written over
//     it; every other line, generated secrets included, is kept; a name of
//     Generate that the file lacks is generated.
//   - EnvRestore: Path+".prev" is put back (a rollback of EnvUpdate).
//
// Sealed are secret values a person gave, sealed under the cluster key for
// fsm.AppSettingPurpose(App, name). Raft holds them only sealed: the
// coordinator opens them into Values as it hands the task to the agent
// over its mutually authenticated stream, and the agent refuses a spec
// that still has any.
type EnvSpec struct {
	Path     string                     `json:"path"`
	Values   map[string]string          `json:"values,omitempty"`
	Generate map[string]int             `json:"generate,omitempty"` // name → length
	Mode     string                     `json:"mode,omitempty"`
	Op       string                     `json:"op,omitempty"` // names the operation of an EnvUpdate
	App      string                     `json:"app,omitempty"`
	Sealed   map[string]*secrets.Sealed `json:"sealed,omitempty"`
}

// EnvSpec modes.
const (
	EnvCreate  = ""
	EnvUpdate  = "update"
	EnvRestore = "restore"
)

// CreateSpec creates a container on the task's VMID. The agent tags it
// with the task (see Tag), which is how a repeated delivery recognises a
// container it already made.
type CreateSpec struct {
	Template     string   `json:"template"`         // file name, e.g. debian-13-standard_13.6-1_amd64.tar.zst
	TemplateFrom string   `json:"template_storage"` // default local
	Hostname     string   `json:"hostname"`
	Cores        int      `json:"cores,omitempty"`
	MemoryMB     int      `json:"memory_mb,omitempty"`
	SwapMB       int      `json:"swap_mb,omitempty"`
	DiskGB       int      `json:"disk_gb,omitempty"`
	Storage      string   `json:"storage,omitempty"` // default local-lvm
	Net0         string   `json:"net0,omitempty"`
	Nameserver   string   `json:"nameserver,omitempty"`
	Features     string   `json:"features,omitempty"` // default nesting=1,keyctl=1
	Privileged   bool     `json:"privileged,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Start        bool     `json:"start,omitempty"`
	// OpTag marks the container with the operation that makes it, the
	// same for every attempt: a container an earlier attempt made is
	// taken as it is, or, if that attempt's create was killed (the
	// container still locked "create"), removed and made again.
	OpTag string `json:"op_tag,omitempty"`
}

// StopSpec is for shutdown (Timeout seconds) and destroy (Force).
type StopSpec struct {
	TimeoutSec int  `json:"timeout_sec,omitempty"`
	Force      bool `json:"force,omitempty"`
	// OpTag (destroy): the container may still be locked "create" by a
	// create of this operation (CreateSpec.OpTag) that was killed; if it
	// carries this tag and no create runs, the lock is lifted first.
	OpTag string `json:"op_tag,omitempty"`
}

// SnapshotSpec names a snapshot (snapshot, delete_snapshot, rollback).
type SnapshotSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Start       bool   `json:"start,omitempty"` // rollback: start afterwards
}

// CloneSpec clones the task's VMID to NewVMID.
type CloneSpec struct {
	NewVMID  int    `json:"new_vmid"`
	Hostname string `json:"hostname"`
	Snapshot string `json:"snapshot,omitempty"`
	Storage  string `json:"storage,omitempty"`
}

// BackupSpec backs up the task's VMID.
type BackupSpec struct {
	Storage string `json:"storage,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

// RestoreSpec restores an archive onto the task's VMID.
type RestoreSpec struct {
	Volid    string `json:"volid"`
	Storage  string `json:"storage,omitempty"`
	Force    bool   `json:"force,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Unique gives the restored container a new MAC address, and Net0
	// replaces its backed-up network (a move restores a copy beside the
	// running original, which keeps its own).
	Unique bool   `json:"unique,omitempty"`
	Net0   string `json:"net0,omitempty"`
}

// VolumeSpec names a volume (delete_backup).
type VolumeSpec struct {
	Volid string `json:"volid"`
}

// ExecSpec runs a command in the container.
type ExecSpec struct {
	Argv []string `json:"argv"`
}

// PushSpec writes a file into the container.
type PushSpec struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
	Perms   string `json:"perms,omitempty"`
}

// ConfigSpec sets and deletes container config keys.
type ConfigSpec struct {
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

// TemplateSpec downloads a template.
type TemplateSpec struct {
	Storage  string `json:"storage,omitempty"`
	Template string `json:"template"`
}

// Output is what a successful task reports.
type Output struct {
	VMID   int    `json:"vmid,omitempty"`
	Volid  string `json:"volid,omitempty"`
	Code   int    `json:"code,omitempty"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Status string `json:"status,omitempty"` // inspect: running or stopped
	Name   string `json:"name,omitempty"`
}

// Tag is the Proxmox tag that marks a container as made by task id.
func Tag(taskID string) string {
	b := []byte("pxt-")
	for _, c := range []byte(taskID) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, '-')
		}
	}
	return string(b)
}

// ManagedTag marks every container Proximity made.
const ManagedTag = "proximity"

// Failure is the kind of a task's or a live request's failure: what the
// agent reports beside the error's text, and what the coordinator branches
// on (retry or not, 409 or 503). The text of each is its wire and log form;
// never compare a failure by its text elsewhere.
type Failure string

// The failures. The first ten name Proxmox's typed errors (the agent maps
// them, agent/failure.go); the rest are the coordinator's own.
const (
	FailExists         Failure = "exists"
	FailNotFound       Failure = "not_found"
	FailLocked         Failure = "locked"
	FailNotRunning     Failure = "not_running"
	FailAlreadyRunning Failure = "already_running"
	FailRunning        Failure = "running"
	FailTimeout        Failure = "timeout" // also: a stage past its deadline (fenced)
	FailProtected      Failure = "protected"
	FailUnsupported    Failure = "unsupported"
	FailInvalid        Failure = "invalid"   // also: refused by the node's policy
	FailError          Failure = "error"     // anything else
	FailBusy           Failure = "busy"      // the node answers too many live requests
	FailCancelled      Failure = "cancelled" // fenced by a cancel
	FailCheck          Failure = "check"     // the task ran, its output fails the stage's check
	FailOutput         Failure = "output"    // the task's output does not decode
)

// Permanent reports whether no retry of the same task can succeed.
func (f Failure) Permanent() bool {
	return f == FailInvalid || f == FailUnsupported || f == FailProtected
}
