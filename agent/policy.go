package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/internal/validate"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// Policy is this node's own limit on the work it takes from the cluster.
// It comes from the node's configuration (/etc/proximity/agent.yaml), not
// from the coordinator, so a coordinator that has been taken over still
// cannot use the agent to take over the node: no privileged containers,
// no container configuration beyond an allowlist of keys and values, and
// commands and files inside a container only as the deploy flow uses them.
// Everything the rules do not name is refused.
//
// The zero Policy is DefaultPolicy.
type Policy struct {
	// AllowPrivileged lets tasks create privileged containers (and clone
	// them), and run the deploy flow's commands inside them. Off by
	// default: root in a privileged container is root on the node.
	AllowPrivileged bool
	// Source names where the policy was read (the agent's --config file);
	// refusals quote it.
	Source string
}

// DefaultPolicy is the policy of a node whose configuration says nothing:
// everything below, and no privileged containers.
func DefaultPolicy() Policy { return Policy{} }

// AppDir is the app's directory inside its container: the deploy flow
// pushes compose.yaml and writes .env there, and runs Compose on it
// (coordinator/apps).
const AppDir = "/opt/proximity/app"

// RefusedError is a task this node's policy does not run. It is reported
// with the error kind "invalid", which the coordinator does not retry.
type RefusedError struct {
	Source string // the configuration file, when there is one
	Rule   string // the rule the task broke, in words
}

func (e *RefusedError) Error() string {
	if e.Source == "" {
		return "refused by this node's policy: " + e.Rule
	}
	return "refused by this node's policy (" + e.Source + "): " + e.Rule
}

// Unwrap makes a refusal an invalid request (taskspec.FailInvalid).
func (e *RefusedError) Unwrap() error { return pve.ErrInvalid }

func (p Policy) refuse(format string, args ...any) error {
	return &RefusedError{Source: p.Source, Rule: fmt.Sprintf(format, args...)}
}

// privilegedRule names the setting that would allow what was refused.
const privilegedRule = "(allow_privileged: false)"

// Check decides whether this node runs task t; a nil error means yes. It is
// the one gate in front of every task (executor.do calls it first). Most
// rules read only the task; those about a container the task acts in
// (exec, push, write_env, set_config, and the source of a clone) read
// that container's configuration through rt.
func (p Policy) Check(ctx context.Context, rt pve.Runtime, t *pb.Task) error {
	vmid := int(t.Vmid)
	switch t.Kind {
	case taskspec.Start, taskspec.Stop, taskspec.Shutdown, taskspec.Reboot, taskspec.Destroy, taskspec.Inspect:
		return nil
	case taskspec.Create:
		spec, err := decode[taskspec.CreateSpec](t)
		if err != nil {
			return err
		}
		return p.checkCreate(spec)
	case taskspec.Snapshot, taskspec.DeleteSnapshot, taskspec.Rollback:
		spec, err := decode[taskspec.SnapshotSpec](t)
		if err != nil {
			return err
		}
		return p.snapshotName(spec.Name)
	case taskspec.Clone:
		spec, err := decode[taskspec.CloneSpec](t)
		if err != nil {
			return err
		}
		if err := p.checkClone(spec); err != nil {
			return err
		}
		cfg, err := rt.Config(ctx, vmid)
		if err != nil {
			return err
		}
		if !unprivileged(cfg) && !p.AllowPrivileged {
			return p.refuse("CT %d is privileged, and a clone of it would be too: privileged containers are not allowed %s", vmid, privilegedRule)
		}
		return nil
	case taskspec.Backup:
		spec, err := decode[taskspec.BackupSpec](t)
		if err != nil {
			return err
		}
		if err := p.storage("backup storage", spec.Storage); err != nil {
			return err
		}
		if !slices.Contains([]string{"", "snapshot", "suspend", "stop"}, spec.Mode) {
			return p.refuse("backup mode %q is not snapshot, suspend or stop", spec.Mode)
		}
		return nil
	case taskspec.Restore:
		spec, err := decode[taskspec.RestoreSpec](t)
		if err != nil {
			return err
		}
		if err := p.backupVolume(spec.Volid); err != nil {
			return err
		}
		if err := p.storage("restore storage", spec.Storage); err != nil {
			return err
		}
		if spec.Net0 != "" {
			if err := p.network("net0", spec.Net0); err != nil {
				return err
			}
		}
		return p.hostname(spec.Hostname, false)
	case taskspec.DeleteBackup:
		spec, err := decode[taskspec.VolumeSpec](t)
		if err != nil {
			return err
		}
		return p.backupVolume(spec.Volid)
	case taskspec.DownloadTemplate:
		spec, err := decode[taskspec.TemplateSpec](t)
		if err != nil {
			return err
		}
		if err := p.storage("template storage", spec.Storage); err != nil {
			return err
		}
		return p.template(spec.Template)
	case taskspec.Exec:
		spec, err := decode[taskspec.ExecSpec](t)
		if err != nil {
			return err
		}
		if err := p.checkExec(spec.Argv); err != nil {
			return err
		}
		return p.appContainer(ctx, rt, vmid, "exec")
	case taskspec.Push:
		spec, err := decode[taskspec.PushSpec](t)
		if err != nil {
			return err
		}
		if err := p.appPath("push", spec.Path); err != nil {
			return err
		}
		if spec.Perms != "" && !permsRE.MatchString(spec.Perms) {
			return p.refuse("push: permissions %q are not plain rwx bits (0644, 0600, ...; no setuid, setgid or sticky bit)", spec.Perms)
		}
		return p.appContainer(ctx, rt, vmid, "push")
	case taskspec.WriteEnv:
		spec, err := decode[taskspec.EnvSpec](t)
		if err != nil {
			return err
		}
		if err := p.appPath("write_env", spec.Path); err != nil {
			return err
		}
		for name, n := range spec.Generate {
			if n < 1 || n > maxSecretLen {
				return p.refuse("write_env: a generated %s of %d characters (1-%d)", name, n, maxSecretLen)
			}
			if err := dotenv.CheckName(name); err != nil {
				return p.refuse("write_env: %v", err)
			}
		}
		// The coordinator checked every value; a value that would add a
		// line to the .env or be read back differently is refused here
		// too (its text is not repeated: it may be a secret).
		for name, v := range spec.Values {
			if err := dotenv.CheckValue(name, v); err != nil {
				return p.refuse("write_env: %v", err)
			}
		}
		if len(spec.Sealed) > 0 {
			return p.refuse("write_env: sealed values reached the agent unopened")
		}
		if spec.Mode != taskspec.EnvCreate && spec.Mode != taskspec.EnvUpdate && spec.Mode != taskspec.EnvRestore {
			return p.refuse("write_env: unknown mode %q", spec.Mode)
		}
		return p.appContainer(ctx, rt, vmid, "write_env")
	case taskspec.SetConfig:
		spec, err := decode[taskspec.ConfigSpec](t)
		if err != nil {
			return err
		}
		if err := p.checkSetConfig(spec); err != nil {
			return err
		}
		return p.appContainer(ctx, rt, vmid, "pct set")
	case taskspec.Forwards:
		spec, err := decode[taskspec.ForwardsSpec](t)
		if err != nil {
			return err
		}
		return p.checkForwards(spec.Forwards)
	}
	return p.refuse("task kind %q is not one this node runs", t.Kind)
}

// CheckLive decides whether this node answers a live request (the Live
// stream, agent/live.go); a nil error means yes. Live requests only read:
// the logs of the app's Compose project, and named variables of the .env
// file in the app's directory. Both only in containers Proximity made
// (the managed tag, as for exec and push), with their bounds: a tail of
// 1-5000 lines, since an RFC 3339 time or a duration, at most 100 names
// that are variable names.
func (p Policy) CheckLive(ctx context.Context, rt pve.Runtime, req *pb.LiveRequest) error {
	switch req.Kind {
	case "app_logs":
		a := req.Logs
		if a == nil || a.Tail < 1 || a.Tail > liveMaxLines {
			return p.refuse("app_logs: a tail of 1-%d lines", liveMaxLines)
		}
		if !sinceRE.MatchString(a.Since) {
			return p.refuse("app_logs: since %q is not an RFC 3339 time or a duration", a.Since)
		}
		return p.appContainer(ctx, rt, int(req.Vmid), "app_logs")
	case "read_env":
		e := req.Env
		if e == nil || path.Base(e.Path) != ".env" {
			return p.refuse("read_env: only the app's .env file may be read")
		}
		if err := p.appPath("read_env", e.Path); err != nil {
			return err
		}
		if len(e.Names) == 0 || len(e.Names) > liveMaxNames {
			return p.refuse("read_env: 1-%d names", liveMaxNames)
		}
		for _, n := range e.Names {
			if !envNameRE.MatchString(n) {
				return p.refuse("read_env: %q is not a variable name", n)
			}
		}
		return p.appContainer(ctx, rt, int(req.Vmid), "read_env")
	}
	return p.refuse("live request kind %q is not one this node answers", req.Kind)
}

// maxSecretLen bounds a generated secret (the catalog allows 16-128).
const maxSecretLen = 4096

var (
	// Proxmox VE's formats: pve-storage-id, pve-configid (snapshots), tags.
	storageIDRE = regexp.MustCompile(`(?i)^[a-z][a-z0-9._-]*[a-z0-9]$`)
	snapNameRE  = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]{1,39}$`)
	tagRE       = regexp.MustCompile(`(?i)^[a-z0-9_][a-z0-9_+.-]*$`)
	// A template is a file name in the storage's template directory.
	templateRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	// A backup volume: STORAGE:backup/NAME, NAME from vzdump or PBS.
	backupVolRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]):backup/([A-Za-z0-9._:+/-]+)$`)
	// One element of a path under the app's directory.
	pathElemRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)
	permsRE    = regexp.MustCompile(`^0?[0-7]{3}$`)
	// A variable name of a .env file.
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// since of app_logs: empty, RFC 3339, or a duration such as 10m.
	sinceRE = regexp.MustCompile(`^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$|^([0-9]{1,9}(\.[0-9]{1,9})?(ns|us|µs|ms|s|m|h))+$`)
	// The value of one key of a netN setting.
	netValueRE = regexp.MustCompile(`^[A-Za-z0-9.:/_-]+$`)
	// The path of the health check URL (catalog: it starts with /).
	urlPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$`)
)

func (p Policy) storage(what, s string) error {
	if s != "" && !storageIDRE.MatchString(s) {
		return p.refuse("%s %q is not a storage ID", what, s)
	}
	return nil
}

func (p Policy) template(name string) error {
	if len(name) > 255 || !templateRE.MatchString(name) {
		return p.refuse("template %q is not a file name in the storage's template directory", name)
	}
	return nil
}

func (p Policy) snapshotName(name string) error {
	if !snapNameRE.MatchString(name) {
		return p.refuse("snapshot name %q is not a Proxmox snapshot name (a letter, then 1-39 letters, digits, _ or -)", name)
	}
	return nil
}

func (p Policy) hostname(h string, required bool) error {
	if h == "" && !required {
		return nil
	}
	if _, err := validate.Hostname("hostname", h); err != nil {
		return p.refuse("hostname %q is not an RFC 1123 host name", h)
	}
	return nil
}

// backupVolume admits a backup archive on a storage, never a path on the
// node or another kind of volume (a container's disk, an ISO).
func (p Policy) backupVolume(volid string) error {
	m := backupVolRE.FindStringSubmatch(volid)
	if m == nil || slices.Contains(strings.Split(m[2], "/"), "..") {
		return p.refuse("volume %q is not a backup archive on a storage (STORAGE:backup/NAME)", volid)
	}
	return nil
}

// checkCreate: unprivileged unless allowed, and nothing in the spec that
// reaches past the container (features, storage, template, network).
func (p Policy) checkCreate(s taskspec.CreateSpec) error {
	if s.Privileged && !p.AllowPrivileged {
		return p.refuse("privileged containers are not allowed %s", privilegedRule)
	}
	if err := p.template(s.Template); err != nil {
		return err
	}
	if err := p.storage("template storage", s.TemplateFrom); err != nil {
		return err
	}
	if err := p.storage("storage", s.Storage); err != nil {
		return err
	}
	if err := p.hostname(s.Hostname, true); err != nil {
		return err
	}
	if s.Cores < 0 || s.MemoryMB < 0 || s.SwapMB < 0 || s.DiskGB < 0 {
		return p.refuse("negative cores, memory, swap or disk size")
	}
	if s.Features != "" {
		if err := p.features(s.Features); err != nil {
			return err
		}
	}
	if s.Net0 != "" {
		if err := p.network("net0", s.Net0); err != nil {
			return err
		}
	}
	if err := p.nameservers(s.Nameserver); err != nil {
		return err
	}
	for _, tag := range append(s.Tags, opTag(s)...) {
		if !tagRE.MatchString(tag) {
			return p.refuse("tag %q is not a Proxmox tag", tag)
		}
	}
	return nil
}

func (p Policy) checkClone(s taskspec.CloneSpec) error {
	if err := p.hostname(s.Hostname, false); err != nil {
		return err
	}
	if s.Snapshot != "" {
		if err := p.snapshotName(s.Snapshot); err != nil {
			return err
		}
	}
	return p.storage("clone storage", s.Storage)
}

// allowedFeatures are the container features a task may turn on: Docker
// needs nesting and keyctl, and FUSE stays inside the container. Not
// mount (NFS/CIFS mounts from the container), mknod or force_rw_sys.
var allowedFeatures = []string{"nesting", "keyctl", "fuse"}

func (p Policy) features(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(allowedFeatures, k) || (val != "0" && val != "1") {
			return p.refuse("features %q: only %s, each =0 or =1, may be set", v, strings.Join(allowedFeatures, ", "))
		}
	}
	return nil
}

// netKeys are the properties of a netN setting a task may give.
var netKeys = []string{"name", "bridge", "hwaddr", "ip", "gw", "ip6", "gw6", "firewall", "tag", "mtu", "rate", "type", "link_down"}

func (p Policy) network(key, v string) error {
	seen := map[string]bool{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(netKeys, k) || seen[k] || !netValueRE.MatchString(val) || (k == "type" && val != "veth") {
			return p.refuse("%s %q: only %s, each once, with plain values", key, v, strings.Join(netKeys, ", "))
		}
		seen[k] = true
	}
	return nil
}

func (p Policy) nameservers(v string) error {
	for _, a := range strings.Fields(v) {
		if _, err := netip.ParseAddr(a); err != nil {
			return p.refuse("nameserver %q is not a list of IP addresses", v)
		}
	}
	return nil
}

// configKeys are the pct set keys a task may set or delete, each with the
// check of its value. The deploy flow sets none today; these are the
// ones a settings change could need. Deny by default: no mount points
// (mpN), devices (devN), raw lxc.* keys, hookscript, rootfs, unprivileged,
// tags (the mark of Proximity's containers), and anything else not named.
var configKeys = map[string]func(p Policy, key, v string) error{
	"cores":        intKey(1, 8192),
	"cpulimit":     numberKey(0, 8192),
	"cpuunits":     intKey(0, 500000),
	"memory":       intKey(16, 1<<31),
	"swap":         intKey(0, 1<<31),
	"onboot":       intKey(0, 1),
	"hostname":     func(p Policy, _, v string) error { return p.hostname(v, true) },
	"description":  func(Policy, string, string) error { return nil },
	"nameserver":   func(p Policy, _, v string) error { return p.nameservers(v) },
	"searchdomain": searchDomains,
	"features":     func(p Policy, _, v string) error { return p.features(v) },
}

var netKeyRE = regexp.MustCompile(`^net([0-9]|[12][0-9]|3[01])$`)

func configKeyCheck(key string) func(p Policy, key, v string) error {
	if netKeyRE.MatchString(key) {
		return func(p Policy, key, v string) error { return p.network(key, v) }
	}
	return configKeys[key]
}

func allowedConfigKeys() string {
	keys := make([]string, 0, len(configKeys)+1)
	for k := range configKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(append(keys, "net0-net31"), ", ")
}

func intKey(lo, hi int) func(p Policy, key, v string) error {
	return func(p Policy, key, v string) error {
		if n, err := strconv.Atoi(v); err != nil || n < lo || n > hi {
			return p.refuse("pct set %s=%q: want a whole number %d-%d", key, v, lo, hi)
		}
		return nil
	}
}

func numberKey(lo, hi float64) func(p Policy, key, v string) error {
	return func(p Policy, key, v string) error {
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < lo || f > hi {
			return p.refuse("pct set %s=%q: want a number %g-%g", key, v, lo, hi)
		}
		return nil
	}
}

func searchDomains(p Policy, key, v string) error {
	for _, d := range strings.Fields(v) {
		if _, err := validate.Hostname(key, d); err != nil {
			return p.refuse("pct set %s=%q: want domain names", key, v)
		}
	}
	return nil
}

func (p Policy) checkSetConfig(s taskspec.ConfigSpec) error {
	keys := make([]string, 0, len(s.Set))
	for k := range s.Set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		check := configKeyCheck(k)
		if check == nil {
			return p.refuse("pct set of key %q is not allowed (allowed keys: %s)", k, allowedConfigKeys())
		}
		if strings.ContainsRune(s.Set[k], 0) {
			return p.refuse("pct set %s: a NUL in the value", k)
		}
		if err := check(p, k, s.Set[k]); err != nil {
			return err
		}
	}
	for _, k := range s.Delete {
		if k == "hostname" || configKeyCheck(k) == nil {
			return p.refuse("pct set --delete of key %q is not allowed (allowed keys: %s, but not hostname)", k, allowedConfigKeys())
		}
	}
	return nil
}

// A command shape is one element per argument: a literal, or a check.
type argShape struct {
	lit   string
	check func(string) bool
}

type command struct {
	name string
	argv []argShape
}

func lits(args ...string) []argShape {
	out := make([]argShape, len(args))
	for i, a := range args {
		out[i] = argShape{lit: a}
	}
	return out
}

// healthURL is the health check's URL: HTTP on the container's loopback,
// a port, and a path (the catalog's health_check).
func healthURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "http://127.0.0.1:")
	if !ok {
		return false
	}
	port, urlPath, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return false
	}
	return urlPathRE.MatchString("/" + urlPath)
}

// deployCommands are the commands the deploy flow runs in an app's
// container (coordinator/apps), exactly: nothing else runs.
var deployCommands = []command{
	{"the network check", lits("ip", "-4", "addr", "show", "dev", "eth0")},
	{"the Docker install", lits("sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl")},
	{"compose up", lits("docker", "compose", "--project-directory", AppDir, "up", "-d", "--remove-orphans")},
	{"compose pull", lits("docker", "compose", "--project-directory", AppDir, "pull")},
	{"the health check", append(lits("curl", "-fsS", "-o", "/dev/null", "--max-time", "5"), argShape{check: healthURL})},
}

func (c command) matches(argv []string) bool {
	if len(argv) != len(c.argv) {
		return false
	}
	for i, a := range c.argv {
		if a.check != nil && !a.check(argv[i]) || a.check == nil && a.lit != argv[i] {
			return false
		}
	}
	return true
}

func (p Policy) checkExec(argv []string) error {
	for _, c := range deployCommands {
		if c.matches(argv) {
			return nil
		}
	}
	names := make([]string, len(deployCommands))
	for i, c := range deployCommands {
		names[i] = c.name
	}
	shown := fmt.Sprintf("%q", argv)
	if len(shown) > 200 {
		shown = shown[:200] + "…"
	}
	return p.refuse("exec of %s is not one of the deploy flow's commands (%s)", shown, strings.Join(names, ", "))
}

// appPath admits a file strictly inside the app's directory, written in
// normal form: absolute, no "." or ".." element, no empty element, no
// trailing slash, plain names. pct push opens the path from inside the
// container, so a symbolic link there leads only elsewhere in the same
// container.
func (p Policy) appPath(what, file string) error {
	rel, ok := strings.CutPrefix(file, AppDir+"/")
	if !ok || path.Clean(file) != file {
		return p.refuse("%s to %q: files may only be written inside the app's directory %s (a normal path, no ..)", what, file, AppDir)
	}
	for _, el := range strings.Split(rel, "/") {
		if el == "." || el == ".." || !pathElemRE.MatchString(el) {
			return p.refuse("%s to %q: files may only be written inside the app's directory %s (a normal path, no ..)", what, file, AppDir)
		}
	}
	return nil
}

// appContainer admits work inside (or on the configuration of) a
// container only when Proximity made it (it carries the managed tag) and,
// unless the policy allows privileged containers, it is unprivileged.
func (p Policy) appContainer(ctx context.Context, rt pve.Runtime, vmid int, what string) error {
	cfg, err := rt.Config(ctx, vmid)
	if err != nil {
		return err
	}
	if !unprivileged(cfg) && !p.AllowPrivileged {
		return p.refuse("CT %d is privileged: %s in privileged containers is not allowed %s", vmid, what, privilegedRule)
	}
	if !slices.Contains(strings.FieldsFunc(cfg["tags"], func(r rune) bool { return r == ';' || r == ',' || r == ' ' }), taskspec.ManagedTag) {
		return p.refuse("CT %d was not made by Proximity (no %q tag): %s only in Proximity's containers", vmid, taskspec.ManagedTag, what)
	}
	return nil
}

func unprivileged(cfg map[string]string) bool { return cfg["unprivileged"] == "1" }

// reservedPorts are ports of Proxmox VE itself (its firewall documentation
// lists them) that a forward must not take over: the web interface, the
// SPICE proxy, corosync, the VNC consoles, live migration. Ports below
// 1024 (SSH, rpcbind, ...) are refused as well.
var reservedPorts = [][2]int{{3128, 3128}, {5405, 5412}, {5900, 5999}, {8006, 8006}, {60000, 60050}}

func (p Policy) checkForwards(fs []nat.Forward) error {
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			return p.refuse("port forward: %v", err)
		}
		if f.PublicPort < 1024 {
			return p.refuse("port forward %s: public port %d is below 1024", f.App, f.PublicPort)
		}
		for _, r := range reservedPorts {
			if f.PublicPort >= r[0] && f.PublicPort <= r[1] {
				return p.refuse("port forward %s: public port %d is one Proxmox VE uses itself", f.App, f.PublicPort)
			}
		}
	}
	return nil
}
