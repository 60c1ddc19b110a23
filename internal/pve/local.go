package pve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/proximity-ve/proximity/internal/nat"
)

// Options configure the local runtime.
type Options struct {
	// Node is this Proxmox node's name.
	Node string
	// APIURL is the node's own API, https://127.0.0.1:8006/api2/json.
	APIURL string
	// TokenID (USER@REALM!NAME) and Secret authenticate to the API.
	TokenID, Secret string
	// CAFile is the PEM the API's certificate must chain to
	// (/etc/pve/pve-root-ca.pem on a node).
	CAFile string
	// BinDir holds pct, vzdump and pveam; empty means $PATH.
	BinDir string
	// Env is added to the tools' environment.
	Env []string
	// WorkDir keeps the tools' output while they run (default: temp dir).
	WorkDir string
	// Default deadlines when the context has none: API calls, synchronous
	// commands, and tasks (create, backup, ...).
	APITimeout, CommandTimeout, TaskTimeout time.Duration
	// ToolUmask runs the tools with the umask ToolUmask whatever the
	// agent's own, by re-executing the running binary, whose main must
	// call RunToolWithUmask first.
	ToolUmask bool
}

// Local is the Runtime of the node the agent runs on: it runs pct, vzdump
// and pveam as child processes and reads the node's API with go-proxmox.
type Local struct {
	opt Options
	api *proxmox.Client
}

var _ Runtime = (*Local)(nil)

// NewLocal returns the runtime for opt.
func NewLocal(opt Options) (*Local, error) {
	if opt.Node == "" || opt.APIURL == "" {
		return nil, errors.New("pve: node name and API URL are required")
	}
	if opt.APITimeout == 0 {
		opt.APITimeout = 15 * time.Second
	}
	if opt.CommandTimeout == 0 {
		opt.CommandTimeout = time.Minute
	}
	if opt.TaskTimeout == 0 {
		opt.TaskTimeout = 30 * time.Minute
	}
	if opt.WorkDir == "" {
		opt.WorkDir = os.TempDir()
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opt.CAFile != "" {
		pem, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("pve: read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("pve: %s holds no certificate", opt.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	hc := &http.Client{Timeout: opt.APITimeout, Transport: &http.Transport{
		TLSClientConfig: tlsCfg, TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: opt.APITimeout,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second,
	}}
	c := proxmox.NewClient(opt.APIURL, proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(opt.TokenID, opt.Secret))
	return &Local{opt: opt, api: c}, nil
}

// --- plumbing -------------------------------------------------------------

func (l *Local) deadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// statusPrefix is what go-proxmox puts before the Proxmox message: "500 "
// (the status line) or "bad request: " (a 400, whose "400 " is kept).
var statusPrefix = regexp.MustCompile(`^(?:bad request: |[1-5]\d\d )`)

// get reads an API path into v, turning failures into typed errors.
func (l *Local) get(ctx context.Context, path string, v any) error {
	ctx, cancel := l.deadline(ctx, l.opt.APITimeout)
	defer cancel()
	return l.apiErr(ctx, l.api.Get(ctx, path, v))
}

func (l *Local) apiErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &Error{Kind: ErrTimeout, Text: "proxmox API: " + err.Error()}
	case errors.Is(err, proxmox.ErrNotAuthorized):
		return &Error{Text: "proxmox API: not authorized (check the API token)"}
	}
	text := statusPrefix.ReplaceAllString(err.Error(), "")
	if e, ok := Classify(text).(*Error); ok {
		return e
	}
	return err
}

func (l *Local) bin(name string) string {
	if l.opt.BinDir != "" {
		return filepath.Join(l.opt.BinDir, name)
	}
	return name
}

// run runs a Proxmox tool. Its output goes to files, not pipes, and it
// runs in its own process group: if the agent dies, the tool and its task
// carry on rather than die of SIGPIPE, and a restarted agent can wait for
// the task. A deadline kills the whole group.
func (l *Local) run(ctx context.Context, timeout time.Duration, tool string, args ...string) (stdout, stderr string, code int, err error) {
	return l.runIn(ctx, timeout, "", tool, args...)
}

// runIn is run with stdin.
func (l *Local) runIn(ctx context.Context, timeout time.Duration, stdin, tool string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := l.deadline(ctx, timeout)
	defer cancel()
	outF, err := os.CreateTemp(l.opt.WorkDir, "pve-"+tool+"-*.out")
	if err != nil {
		return "", "", -1, err
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp(l.opt.WorkDir, "pve-"+tool+"-*.err")
	if err != nil {
		return "", "", -1, err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	prog, argv, env := l.bin(tool), args, []string(nil)
	if l.opt.ToolUmask {
		if prog, argv, env, err = toolCommand(prog, args); err != nil {
			return "", "", -1, err
		}
	}
	cmd := exec.CommandContext(ctx, prog, argv...)
	cmd.Stdout, cmd.Stderr = outF, errF
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Env = append(append(os.Environ(), l.opt.Env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	runErr := cmd.Run()
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	stdout, stderr = string(o), string(e)
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
		return stdout, stderr, 0, nil
	case ctx.Err() != nil:
		return stdout, stderr, -1, &Error{Kind: ErrTimeout, Text: fmt.Sprintf("%s %s: no answer before the deadline", tool, strings.Join(redact(args), " "))}
	case errors.As(runErr, &exitErr):
		return stdout, stderr, exitErr.ExitCode(), nil
	default:
		return stdout, stderr, -1, fmt.Errorf("run %s: %w", tool, runErr)
	}
}

// redact hides option values that are secrets from error texts.
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if i > 0 && (args[i-1] == "--password" || args[i-1] == "-password") {
			out[i] = "<redacted>"
		}
	}
	return out
}

// tool runs a command that fails with exit 255 and its text on stderr.
func (l *Local) tool(ctx context.Context, timeout time.Duration, tool string, args ...string) (string, error) {
	out, errs, code, err := l.run(ctx, timeout, tool, args...)
	if err != nil {
		return out, err
	}
	if code != 0 {
		return out, failure(errs, code)
	}
	return out, nil
}

func failure(stderr string, code int) error {
	text := strings.TrimSpace(stderr)
	if text == "" {
		text = fmt.Sprintf("exit status %d", code)
	}
	return Classify(text)
}

// task runs a pct command that is a Proxmox task of type typ on vmid. If
// such a task is already running (a previous agent started it and died),
// it waits for that task and returns its result instead of starting the
// operation again.
func (l *Local) task(ctx context.Context, typ string, vmid int, args ...string) error {
	ctx, cancel := l.deadline(ctx, l.opt.TaskTimeout)
	defer cancel()
	active, err := l.ActiveTasks(ctx, vmid)
	if err != nil {
		return err
	}
	for _, t := range active {
		if t.Type == typ {
			return l.WaitTask(ctx, t.UPID)
		}
	}
	_, err = l.tool(ctx, l.opt.TaskTimeout, "pct", args...)
	return err
}

func id(vmid int) string { return strconv.Itoa(vmid) }

// --- lifecycle ------------------------------------------------------------

func (l *Local) Create(ctx context.Context, s CreateSpec) error {
	args := []string{"create", id(s.VMID), s.Template}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("hostname", s.Hostname)
	if s.Cores > 0 {
		add("cores", id(s.Cores))
	}
	if s.MemoryMB > 0 {
		add("memory", id(s.MemoryMB))
	}
	if s.SwapMB > 0 {
		add("swap", id(s.SwapMB))
	}
	add("rootfs", s.RootFS)
	add("net0", s.Net0)
	add("nameserver", s.Nameserver)
	add("features", s.Features)
	add("tags", strings.Join(s.Tags, ";"))
	add("description", s.Description)
	add("password", s.Password)
	args = append(args, "--unprivileged", boolArg(s.Unprivileged))
	if s.OnBoot {
		args = append(args, "--onboot", "1")
	}
	return l.task(ctx, "vzcreate", s.VMID, args...)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (l *Local) Start(ctx context.Context, vmid int) error {
	return l.task(ctx, "vzstart", vmid, "start", id(vmid))
}

func (l *Local) Stop(ctx context.Context, vmid int) error {
	return l.task(ctx, "vzstop", vmid, "stop", id(vmid))
}

func (l *Local) Shutdown(ctx context.Context, vmid int, timeoutSec int) error {
	if timeoutSec <= 0 {
		timeoutSec = 60
	}
	return l.task(ctx, "vzshutdown", vmid, "shutdown", id(vmid), "--timeout", id(timeoutSec))
}

func (l *Local) Reboot(ctx context.Context, vmid int) error {
	return l.task(ctx, "vzreboot", vmid, "reboot", id(vmid))
}

func (l *Local) Destroy(ctx context.Context, vmid int, force bool) error {
	args := []string{"destroy", id(vmid), "--purge"}
	if force {
		args = append(args, "--force")
	}
	return l.task(ctx, "vzdestroy", vmid, args...)
}

// Unlock is pct unlock; it runs at once (no Proxmox task).
func (l *Local) Unlock(ctx context.Context, vmid int) error {
	_, err := l.tool(ctx, l.opt.CommandTimeout, "pct", "unlock", id(vmid))
	return err
}

func (l *Local) Clone(ctx context.Context, vmid, newid int, o CloneOptions) error {
	args := []string{"clone", id(vmid), id(newid)}
	if o.Hostname != "" {
		args = append(args, "--hostname", o.Hostname)
	}
	if o.Snapshot != "" {
		args = append(args, "--snapname", o.Snapshot)
	}
	if o.Full {
		args = append(args, "--full", "1")
	}
	if o.Storage != "" {
		args = append(args, "--storage", o.Storage)
	}
	// A clone task's UPID names the source, not newid, so an interrupted
	// clone is recognised by its target (locked "create"), not resumed here.
	_, err := l.tool(ctx, l.opt.TaskTimeout, "pct", args...)
	return err
}

func (l *Local) Snapshot(ctx context.Context, vmid int, name, description string) error {
	args := []string{"snapshot", id(vmid), name}
	if description != "" {
		args = append(args, "--description", description)
	}
	return l.task(ctx, "vzsnapshot", vmid, args...)
}

func (l *Local) DeleteSnapshot(ctx context.Context, vmid int, name string) error {
	return l.task(ctx, "vzdelsnapshot", vmid, "delsnapshot", id(vmid), name)
}

func (l *Local) Rollback(ctx context.Context, vmid int, name string, start bool) error {
	args := []string{"rollback", id(vmid), name}
	if start {
		args = append(args, "--start", "1")
	}
	return l.task(ctx, "vzrollback", vmid, args...)
}

var archiveRE = regexp.MustCompile(`creating vzdump archive '([^']+)'`)
var vzdumpErrRE = regexp.MustCompile(`(?m)^ERROR: Backup of VM \d+ failed - (.*)$`)

func (l *Local) Backup(ctx context.Context, vmid int, o BackupOptions) (string, error) {
	if o.Storage == "" {
		o.Storage = "local"
	}
	if o.Mode == "" {
		o.Mode = "snapshot"
	}
	if o.Compress == "" {
		o.Compress = "zstd"
	}
	args := []string{id(vmid), "--storage", o.Storage, "--mode", o.Mode, "--compress", o.Compress}
	if o.Notes != "" {
		args = append(args, "--notes-template", o.Notes)
	}
	_, errs, code, err := l.run(ctx, l.opt.TaskTimeout, "vzdump", args...)
	if err != nil {
		return "", err
	}
	return vzdumpResult(o.Storage, errs, code)
}

// vzdumpResult reads vzdump's log (its stderr) and exit code: the volume
// ID of the archive it names on success, else the failure.
func vzdumpResult(storage, log string, code int) (string, error) {
	if code != 0 {
		if m := vzdumpErrRE.FindStringSubmatch(log); m != nil {
			if err := Classify(m[1]); err != nil {
				return "", err
			}
		}
		return "", failure(log, code)
	}
	m := archiveRE.FindStringSubmatch(log)
	if m == nil {
		return "", &Error{Text: "vzdump succeeded but named no archive"}
	}
	name := filepath.Base(m[1])
	if name == "/" || name == "." || name == ".." {
		return "", &Error{Text: "vzdump succeeded but named no archive: " + m[1]}
	}
	return storage + ":backup/" + name, nil
}

func (l *Local) Restore(ctx context.Context, vmid int, volid string, o RestoreOptions) error {
	args := []string{"restore", id(vmid), volid}
	if o.Storage != "" {
		args = append(args, "--storage", o.Storage)
	}
	if o.Force {
		args = append(args, "--force", "1")
	}
	if o.Unique {
		args = append(args, "--unique", "1")
	}
	if o.Hostname != "" {
		args = append(args, "--hostname", o.Hostname)
	}
	if o.Net0 != "" {
		args = append(args, "--net0", o.Net0)
	}
	return l.task(ctx, "vzrestore", vmid, args...)
}

// Exec runs argv in the container. Exit 255 with a Proxmox text on stderr
// is pct's own failure (not running, no such container).
func (l *Local) Exec(ctx context.Context, vmid int, argv ...string) (ExecResult, error) {
	out, errs, code, err := l.run(ctx, l.opt.CommandTimeout, "pct", append([]string{"exec", id(vmid), "--"}, argv...)...)
	if err != nil {
		return ExecResult{}, err
	}
	if code == 255 {
		if e, ok := Classify(errs).(*Error); ok && e.Kind != nil {
			return ExecResult{}, e
		}
	}
	return ExecResult{Stdout: out, Stderr: errs, Code: code}, nil
}

func (l *Local) Push(ctx context.Context, vmid int, content []byte, dest, perms string) error {
	f, err := os.CreateTemp(l.opt.WorkDir, "pve-push-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	args := []string{"push", id(vmid), f.Name(), dest}
	if perms != "" {
		args = append(args, "--perms", perms)
	}
	_, err = l.tool(ctx, l.opt.CommandTimeout, "pct", args...)
	return err
}

func (l *Local) SetConfig(ctx context.Context, vmid int, set map[string]string, del []string) error {
	args := []string{"set", id(vmid)}
	for k, v := range set {
		args = append(args, "--"+k, v)
	}
	if len(del) > 0 {
		args = append(args, "--delete", strings.Join(del, ","))
	}
	_, err := l.tool(ctx, l.opt.CommandTimeout, "pct", args...)
	return err
}

// --- templates ------------------------------------------------------------

func (l *Local) Templates(ctx context.Context, storage string) ([]string, error) {
	out, err := l.tool(ctx, l.opt.CommandTimeout, "pveam", "list", storage)
	if err != nil {
		return nil, err
	}
	return pveamList(out), nil
}

// pveamList reads `pveam list STORAGE`: a header line, then one line per
// template whose first column is its volume ID (local:vztmpl/NAME). The
// names are answered; a line that names no template is skipped.
func pveamList(out string) []string {
	var names []string
	for i, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		if _, file, ok := strings.Cut(f[0], ":vztmpl/"); ok && file != "" && !strings.Contains(file, "/") {
			names = append(names, file)
		}
	}
	return names
}

func (l *Local) AvailableTemplates(ctx context.Context) ([]string, error) {
	out, err := l.tool(ctx, l.opt.CommandTimeout, "pveam", "available", "--section", "system")
	if err != nil {
		return nil, err
	}
	return pveamAvailable(out), nil
}

// pveamAvailable reads `pveam available --section system`: lines of a
// section and a template name.
func pveamAvailable(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			names = append(names, f[1])
		}
	}
	return names
}

// DownloadTemplate runs pveam download. pveam exits 0 when its worker
// fails, so success is checked in the storage afterwards.
func (l *Local) DownloadTemplate(ctx context.Context, storage, name string) error {
	_, errs, code, err := l.run(ctx, l.opt.TaskTimeout, "pveam", "download", storage, name)
	if err != nil {
		return err
	}
	if code != 0 {
		return failure(errs, code)
	}
	have, err := l.Templates(ctx, storage)
	if err != nil {
		return err
	}
	for _, h := range have {
		if h == name {
			return nil
		}
	}
	return &Error{Text: "pveam download did not store " + name + ": " + strings.TrimSpace(errs)}
}

// SetForwards replaces the "ip proximity" nftables table in one nft
// transaction.
func (l *Local) SetForwards(ctx context.Context, forwards []nat.Forward) error {
	script, err := nat.Script(forwards)
	if err != nil {
		return &Error{Kind: ErrInvalid, Text: err.Error()}
	}
	_, errs, code, err := l.runIn(ctx, l.opt.CommandTimeout, script, "nft", "-f", "-")
	if err != nil {
		return err
	}
	if code != 0 {
		return &Error{Text: "nft: " + strings.TrimSpace(errs)}
	}
	return nil
}
