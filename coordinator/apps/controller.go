// Package apps is the app lifecycle: a level-triggered controller that
// runs on the leader and drives every app with an operation in progress
// (deploy, start, stop, restart, delete) through its stages, one agent
// task per stage, under one retry policy. Everything it knows is in the
// FSM, so a new leader resumes where the old one stopped.
package apps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// Backend is what the controller needs of the cluster node.
type Backend interface {
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	FSM() *fsm.FSM
}

// Tasks queues agent work (the agent service).
type Tasks interface {
	Submit(ctx context.Context, t fsm.Task, spec any) (fsm.Task, error)
}

// Policy is the one retry policy: capped exponential backoff and a
// maximum number of attempts. While it retries, the app stays in its
// transitional status; it becomes "error" only when attempts run out.
type Policy struct {
	Base, Max time.Duration
	Attempts  int
	// Timeout is the deadline of one attempt of a stage (long stages
	// take a multiple of it; see undo.go). Zero: 5 minutes, 1 minute for
	// the waiting stages.
	Timeout time.Duration
}

// Delay is the wait before attempt+1.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// DefaultPolicy is used for every stage that runs a Proxmox operation.
var DefaultPolicy = Policy{Base: 2 * time.Second, Max: 30 * time.Second, Attempts: 5, Timeout: defaultTimeout}

// waitPolicy is for stages that wait for something to come up (the
// container's network, the app's health check).
var waitPolicy = Policy{Base: time.Second, Max: 5 * time.Second, Attempts: 60, Timeout: waitTimeout}

// Config configures the controller.
type Config struct {
	Backend Backend
	Tasks   Tasks
	Logger  *slog.Logger
	// Now is the controller's clock: retry delays, task deadlines and
	// the updater's period are read against it (default time.Now). The
	// loop's own wait runs on real time, which testing/synctest fakes.
	Now func() time.Time
	// ScheduleNow is the backup scheduler's clock (schedule.go); nil is
	// Now. The server gives it the API's clock, the one that stamps
	// backups, so the schedules and the retention read one time.
	ScheduleNow func() time.Time
	// Policy overrides DefaultPolicy (tests shorten it).
	Policy *Policy
	// Wait overrides the waiting stages' policy.
	Wait *Policy
	// NewID makes request IDs (api.NewID).
	NewID func(prefix string) string
	// UpdateClock is the automatic updates' clock, against which
	// maintenance windows are read (nil: Now); UpdateEvery how often the
	// updater looks (0: 15 s). See updater.go.
	UpdateClock func() time.Time
	UpdateEvery time.Duration
}

// Controller drives apps' operations.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	policy    Policy
	wait      Policy
	mu        sync.Mutex
	notBefore map[string]time.Time
	// cleanupTry is each pending cleanup's attempt in this term.
	cleanupTry map[string]int
	// lastUpdates is when the updater last looked (updater.go).
	lastUpdates time.Time
	// waitLogged are the scheduled runs whose wait for an operation was
	// logged in this term (schedule.go).
	waitLogged map[string]bool
}

// New returns a controller.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ScheduleNow == nil {
		cfg.ScheduleNow = cfg.Now
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("component", "apps"), policy: DefaultPolicy, wait: waitPolicy, notBefore: map[string]time.Time{}}
	if cfg.Policy != nil {
		c.policy = *cfg.Policy
	}
	if cfg.Wait != nil {
		c.wait = *cfg.Wait
	}
	return c
}

// Run drives apps until ctx ends (the end of this server's leader term).
func (c *Controller) Run(ctx context.Context) {
	c.mu.Lock()
	c.notBefore = map[string]time.Time{}
	c.cleanupTry = map[string]int{}
	c.waitLogged = map[string]bool{}
	c.mu.Unlock()
	for ctx.Err() == nil {
		changed := c.cfg.Backend.FSM().Changed()
		var busy []fsm.App
		var cleanups []fsm.Cleanup
		c.cfg.Backend.FSM().Read(func(s *fsm.State) { busy, cleanups = s.BusyApps(), s.ListCleanups() })
		for _, a := range busy {
			if err := c.advance(ctx, a); err != nil && ctx.Err() == nil && !problem.Is(err, problem.Conflict) {
				c.log.Warn("app step", "app", a.ID, "op", a.Op, "step", a.Step, "err", err)
			}
		}
		c.cleanups(ctx, cleanups)
		c.autoUpdates(ctx)
		c.schedule(ctx)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type stage struct {
	name string
	wait bool // a stage that waits for something to come up
	// task builds the agent task of the stage.
	task func(a fsm.App, e catalog.Entry, n fsm.NetworkSettings) (kind string, spec any)
	// needsEntry stages build their task from the app's catalog entry
	// (template, Compose file, settings, health check); without the entry
	// the operation fails instead.
	needsEntry bool
	// check verifies a succeeded task's output.
	check func(out taskspec.Output) error
	// onSource runs the task on the clone source's container.
	onSource bool
	// forwards marks the stage that sends the node its port forwards.
	forwards bool
	// cleanup marks a stage whose failure does not fail the operation: it
	// is recorded as a pending cleanup and retried until it succeeds.
	cleanup bool
	// timeout multiplies the policy's Timeout for one attempt (0: 1).
	timeout int
}

// Deadline factors (see undo.go).
const (
	createFactor = 2
	longFactor   = 6
)

const appDir = "/opt/proximity/app"

func execOK(out taskspec.Output) error {
	if out.Code != 0 {
		return fmt.Errorf("exit %d: %s", out.Code, firstLine(out.Stderr))
	}
	return nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

func net0(a fsm.App, n fsm.NetworkSettings) (string, string) {
	bridge := n.Bridge
	if bridge == "" {
		bridge = "vmbr0"
	}
	ns := ""
	if len(n.DNS) > 0 {
		ns = n.DNS[0]
	}
	if a.IP != "" && n.Subnet != "" {
		bits := n.Subnet[len(n.Subnet)-2:]
		if bits[0] == '/' {
			bits = bits[1:]
		}
		return fmt.Sprintf("name=eth0,bridge=%s,ip=%s/%s,gw=%s", bridge, a.IP, bits, n.Gateway), ns
	}
	return "name=eth0,bridge=" + bridge + ",ip=dhcp", ns
}

var (
	stCreate = stage{name: "create", needsEntry: true, timeout: createFactor, task: func(a fsm.App, e catalog.Entry, n fsm.NetworkSettings) (string, any) {
		net, ns := net0(a, n)
		return taskspec.Create, taskspec.CreateSpec{Template: e.Template, Hostname: a.Hostname, Cores: a.Resources.Cores,
			MemoryMB: a.Resources.MemoryMB, DiskGB: a.Resources.DiskGB, Net0: net, Nameserver: ns,
			Tags: []string{entryTag(e.ID)}, Start: true}
	}}
	stNetwork = stage{name: "network", wait: true, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Exec, taskspec.ExecSpec{Argv: []string{"ip", "-4", "addr", "show", "dev", "eth0"}}
	}, check: func(out taskspec.Output) error {
		if err := execOK(out); err != nil {
			return err
		}
		for i := 0; i+5 <= len(out.Stdout); i++ {
			if out.Stdout[i:i+5] == "inet " {
				return nil
			}
		}
		return errors.New("eth0 has no IPv4 address yet")
	}}
	stDocker = stage{name: "docker", timeout: longFactor, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Exec, taskspec.ExecSpec{Argv: []string{"sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl"}}
	}, check: execOK}
	stCompose = stage{name: "compose", needsEntry: true, task: func(_ fsm.App, e catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.Push, taskspec.PushSpec{Path: appDir + "/compose.yaml", Content: []byte(e.Compose), Perms: "0644"}
	}}
	stEnv = stage{name: "env", needsEntry: true, task: func(a fsm.App, e catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.WriteEnv, envSpec(a, e)
	}}
	stUp = stage{name: "up", timeout: longFactor, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Exec, taskspec.ExecSpec{Argv: []string{"docker", "compose", "--project-directory", appDir, "up", "-d", "--remove-orphans"}}
	}, check: execOK}
	stHealth = stage{name: "health", needsEntry: true, wait: true, task: func(_ fsm.App, e catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		port := 0
		for _, p := range e.Ports {
			if p.Name == e.HealthCheck.Port {
				port = p.Internal
			}
		}
		return taskspec.Exec, taskspec.ExecSpec{Argv: []string{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5",
			fmt.Sprintf("http://127.0.0.1:%d%s", port, e.HealthCheck.Path)}}
	}, check: execOK}
	stStart = stage{name: "start", task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Start, nil
	}}
	stStop = stage{name: "stop", task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Shutdown, taskspec.StopSpec{TimeoutSec: 60}
	}}
	stReboot = stage{name: "reboot", task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Reboot, nil
	}}
	stDestroy = stage{name: "destroy", task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Destroy, taskspec.StopSpec{Force: true}
	}}
	stBackup = stage{name: "backup", timeout: longFactor, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Backup, taskspec.BackupSpec{Storage: "local", Mode: "snapshot"}
	}, check: func(out taskspec.Output) error {
		// A backup is recorded only with the archive it made.
		if out.Volid == "" {
			return errors.New("vzdump reported no archive")
		}
		return nil
	}}
	stRestore = stage{name: "restore", timeout: longFactor, task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.Restore, taskspec.RestoreSpec{Volid: a.OpArgs["volid"], Storage: "local-lvm", Force: true}
	}}
	stPull = stage{name: "pull", timeout: longFactor, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
		return taskspec.Exec, taskspec.ExecSpec{Argv: []string{"docker", "compose", "--project-directory", appDir, "pull"}}
	}, check: execOK}
	stDeleteBackup = stage{name: "delete-backup", task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.DeleteBackup, taskspec.VolumeSpec{Volid: a.OpArgs["volid"]}
	}}
)

var (
	stSnapshot = stage{name: "snapshot", onSource: true, task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.Snapshot, taskspec.SnapshotSpec{Name: a.OpArgs["snapshot"], Description: "temporary, for clone " + a.ID}
	}}
	stClone = stage{name: "clone", onSource: true, timeout: longFactor, task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.Clone, taskspec.CloneSpec{NewVMID: a.VMID, Hostname: a.Hostname, Snapshot: a.OpArgs["snapshot"]}
	}}
	stDelSnapshot = stage{name: "remove-snapshot", onSource: true, cleanup: true, task: func(a fsm.App, _ catalog.Entry, _ fsm.NetworkSettings) (string, any) {
		return taskspec.DeleteSnapshot, taskspec.SnapshotSpec{Name: a.OpArgs["snapshot"]}
	}}
)

var stForward = stage{name: "forward", forwards: true, task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
	return taskspec.Forwards, nil
}}

var stInspect = stage{name: "inspect", task: func(fsm.App, catalog.Entry, fsm.NetworkSettings) (string, any) {
	return taskspec.Inspect, nil
}}

// adoptedOps are the operations of a container made outside Proximity:
// no Compose stack of ours to start or check, and delete only releases.
var adoptedOps = map[string][]stage{
	fsm.OpAdopt:   {stInspect},
	fsm.OpStart:   {stStart},
	fsm.OpStop:    {stStop},
	fsm.OpRestart: {stReboot},
	fsm.OpDelete:  {stForward},
	fsm.OpRestore: {stStop, stRestore, stStart},
}

// statusFromInspect as a final status takes the container's own status.
const statusFromInspect = "(inspected)"

// opFor returns an app's operation's stages and final status.
func opFor(a fsm.App) ([]stage, string, bool) {
	if a.Op == fsm.OpReconfigure {
		return reconfigureStages(a), prevStatus, true
	}
	if a.Op == fsm.OpUpdate && !a.Adopted {
		return updateStagesOf(a), fsm.AppRunning, true
	}
	op, ok := ops[a.Op]
	if a.Adopted {
		if st, aok := adoptedOps[a.Op]; aok {
			final := op.final
			if a.Op == fsm.OpAdopt {
				final = statusFromInspect
			}
			return st, final, true
		}
	}
	return op.stages, op.final, ok
}

// prevStatus as an operation's final status means "as before".
const prevStatus = "(previous)"

// rollbackPrefix names the stages that put an app back from its
// pre-update backup.
const rollbackPrefix = fsm.StepRollbackPrefix

func renamed(prefix string, st []stage) []stage {
	out := make([]stage, len(st))
	for i, s := range st {
		s.name = prefix + s.name
		out[i] = s
	}
	return out
}

var rollback = renamed(rollbackPrefix, []stage{stStop, stRestore, stStart, stUp, stHealth})

// ops are the stages of each operation and the status it ends in.
var ops = map[string]struct {
	stages []stage
	final  string
}{
	fsm.OpDeploy:       {[]stage{stCreate, stNetwork, stDocker, stCompose, stEnv, stUp, stForward, stHealth}, fsm.AppRunning},
	fsm.OpStart:        {[]stage{stStart, stUp, stHealth}, fsm.AppRunning},
	fsm.OpStop:         {[]stage{stStop}, fsm.AppStopped},
	fsm.OpRestart:      {[]stage{stReboot, stUp, stHealth}, fsm.AppRunning},
	fsm.OpDelete:       {[]stage{stDestroy, stForward}, ""},
	fsm.OpBackup:       {[]stage{stBackup}, prevStatus},
	fsm.OpRestore:      {[]stage{stStop, stRestore, stStart, stUp, stHealth}, fsm.AppRunning},
	fsm.OpUpdate:       {[]stage{stBackup, stPull, stUp, stHealth}, fsm.AppRunning},
	fsm.OpDeleteBackup: {[]stage{stDeleteBackup}, prevStatus},
	fsm.OpClone:        {[]stage{stSnapshot, stClone, stDelSnapshot, stStart, stNetwork, stUp, stForward, stHealth}, fsm.AppRunning},
}

// cleanupStage removes the container of a deploy that failed for good
// (or was cancelled); cleanupStages (undo.go) are its stages.
const cleanupStage = fsm.StepCleanup

func (c *Controller) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.cfg.Backend.Propose(ctx, cmd)
	if err != nil {
		return res, err
	}
	return res, res.Err()
}

func (c *Controller) step(ctx context.Context, a fsm.App, s fsm.AppStepCmd) error {
	s.ID, s.ExpectOp, s.ExpectStep, s.ExpectTask, s.At = a.ID, a.Op, a.Step, a.TaskID, c.cfg.Now()
	// The step is guarded by what the app was at, so a repeated or stale
	// step changes nothing; the request ID only has to be unique.
	_, err := c.propose(ctx, fsm.Command{Type: fsm.CmdAppStep, RequestID: c.cfg.NewID("step_"), AppStep: &s})
	return err
}
