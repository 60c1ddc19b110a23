package pve

import (
	"errors"
	"regexp"
	"strings"
)

// Sentinel errors for the failures callers branch on.
var (
	// ErrExists: the VMID is taken (by a container or a VM).
	ErrExists = errors.New("vmid already exists")
	// ErrNotFound: no such container, snapshot or file.
	ErrNotFound = errors.New("not found")
	// ErrLocked: the container holds a lock (see Error.Lock) or its config
	// file lock could not be taken in time.
	ErrLocked = errors.New("locked")
	// ErrNotRunning: the operation needs a running container.
	ErrNotRunning = errors.New("not running")
	// ErrAlreadyRunning: start of a running container.
	ErrAlreadyRunning = errors.New("already running")
	// ErrRunning: the operation needs a stopped container.
	ErrRunning = errors.New("container is running")
	// ErrTimeout: Proxmox gave up waiting (shutdown, lock) or our
	// deadline passed.
	ErrTimeout = errors.New("timed out")
	// ErrProtected: destroy of a container with protection mode on.
	ErrProtected = errors.New("protection mode enabled")
	// ErrUnsupported: the storage or container cannot do this (snapshot or
	// linked clone feature missing, template rules).
	ErrUnsupported = errors.New("not supported")
	// ErrInvalid: Proxmox rejected a parameter.
	ErrInvalid = errors.New("invalid parameter")
)

// Error is a Proxmox failure: the kind (one of the sentinels, or nil when
// the text is not one Proximity knows), the VMID and lock when the text
// names them, and the text itself.
type Error struct {
	Kind error
	VMID string
	Lock string
	Text string
}

func (e *Error) Error() string { return "proxmox: " + e.Text }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

type rule struct {
	re   *regexp.Regexp
	kind error
}

// rules are checked in order; the first match decides. More specific texts
// come before the general ones they contain ("unable to create CT 100 - CT
// 100 already exists" is ErrExists, "unable to destroy CT 100 - container
// is running" is ErrRunning).
var rules = []rule{
	{regexp.MustCompile(`(?:CT|VM) (\d+) already exists on node '[^']*'`), ErrExists},
	{regexp.MustCompile(`^CT is locked \(([a-z-]+)\)`), ErrLocked},
	{regexp.MustCompile(`can't lock file '[^']*pve-config-(\d+)\.lock' - got timeout`), ErrLocked},
	{regexp.MustCompile(`^CT (\d+) already running`), ErrAlreadyRunning},
	{regexp.MustCompile(`^(?:CT|VM) (\d+) not running`), ErrNotRunning},
	{regexp.MustCompile(`^container '(\d+)' not running!`), ErrNotRunning},
	{regexp.MustCompile(`^can only (?:push files to|pull files from) a running`), ErrNotRunning},
	{regexp.MustCompile(`unable to destroy CT (\d+) - container is running`), ErrRunning},
	{regexp.MustCompile(`can't overwrite running container`), ErrRunning},
	{regexp.MustCompile(`can't remove CT (\d+) - protection mode enabled`), ErrProtected},
	{regexp.MustCompile(`Configuration file 'nodes/[^/]+/lxc/(\d+)\.conf' does not exist`), ErrNotFound},
	{regexp.MustCompile(`snapshot '[^']*' does not exist|volume '[^']*' does not exist|no such task`), ErrNotFound},
	{regexp.MustCompile(`^container did not stop`), ErrTimeout},
	{regexp.MustCompile(`got timeout`), ErrTimeout},
	{regexp.MustCompile(`snapshot feature is not available|Linked clone feature for '[^']*' is not available|you can't start a CT if it's a template|unable to create template, because CT contains snapshots|Full clone of a running container is only possible from a snapshot`), ErrUnsupported},
	{regexp.MustCompile(`snapshot name '[^']*' already used|unable to use snapshot name '[^']*' \(reserved name\)`), ErrExists},
	{regexp.MustCompile(`^400 Parameter verification failed|value does not look like a valid VM ID|^no options specified|parameter '[^']*' not allowed`), ErrInvalid},
}

// Classify turns a Proxmox error text (a command's stderr or a task's exit
// status line) into an *Error. It returns nil for empty text. Unknown texts
// give an *Error with a nil Kind, so nothing is silently dropped.
func Classify(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	// Proxmox CLI errors may span lines ("400 Parameter verification
	// failed.\nstorage: ..."); the first line that matches decides.
	for _, r := range rules {
		if m := r.re.FindStringSubmatch(text); m != nil {
			e := &Error{Kind: r.kind, Text: text}
			if len(m) > 1 {
				if r.kind == ErrLocked && strings.HasPrefix(m[0], "CT is locked") {
					e.Lock = m[1]
				} else {
					e.VMID = m[1]
				}
			}
			return e
		}
	}
	return &Error{Text: text}
}
