package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// maxTaskTime bounds one task, whatever the Proxmox side does.
const maxTaskTime = 30 * time.Minute

type taskKey struct {
	id    string
	fence uint64
}

// executor runs assignments. Each (task, fence) runs once per agent
// process; a redelivered one that is running or whose result is not yet
// delivered is ignored. Tasks on the same VMID run one at a time.
type executor struct {
	a   *Agent
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	seen    map[taskKey]bool // running or finished, result not yet delivered
	vmids   map[int]*sync.Mutex
	running map[string]*runningTask // by task ID: queued or running
	// stopping is set when the agent stops: no task starts after it, so
	// wg.Add never races the wait for the running ones.
	stopping bool
}

// runningTask is a task this agent queued or runs, and how to stop it.
type runningTask struct {
	fence   uint64
	kind    string
	started bool
	cancel  context.CancelFunc
}

// killable are the task kinds whose Proxmox command may be killed when
// the task is cancelled: what they leave behind is undone by the
// operation's undo (a killed create leaves a locked container that the
// cleanup's destroy removes) or is nothing. Others (destroy, restore,
// clone, snapshots, backups, which hold locks and snapshots of their own)
// run to their end; their result is refused.
var killable = map[string]bool{
	taskspec.Create: true, taskspec.Start: true, taskspec.Stop: true, taskspec.Shutdown: true, taskspec.Reboot: true,
	taskspec.Exec: true, taskspec.Push: true, taskspec.Inspect: true, taskspec.WriteEnv: true, taskspec.DownloadTemplate: true,
}

func newExecutor(a *Agent) *executor {
	return &executor{a: a, sem: make(chan struct{}, a.cfg.Concurrency), seen: map[taskKey]bool{}, vmids: map[int]*sync.Mutex{},
		running: map[string]*runningTask{}}
}

func (x *executor) submit(ctx context.Context, t *pb.Task) {
	k := taskKey{t.Id, t.Fence}
	x.mu.Lock()
	if x.seen[k] || x.stopping {
		// A task that arrives while the agent stops is not taken: the
		// next start gets it again from the cluster.
		x.mu.Unlock()
		return
	}
	x.seen[k] = true
	vm := x.vmids[int(t.Vmid)]
	if vm == nil {
		vm = &sync.Mutex{}
		x.vmids[int(t.Vmid)] = vm
	}
	// The task runs to its end when the agent is asked to stop, so that
	// its result can be reported; only a cancel from the cluster (or
	// maxTaskTime) ends it early.
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt := &runningTask{fence: t.Fence, kind: t.Kind, cancel: cancel}
	x.running[t.Id] = rt
	x.wg.Add(1)
	x.mu.Unlock()
	go func() {
		defer x.wg.Done()
		defer func() {
			cancel()
			x.mu.Lock()
			if x.running[t.Id] == rt {
				delete(x.running, t.Id)
			}
			x.mu.Unlock()
		}()
		select {
		case x.sem <- struct{}{}:
		case <-ctx.Done():
			return
		case <-tctx.Done():
			x.skip(t)
			return
		}
		defer func() { <-x.sem }()
		if t.Vmid != 0 {
			vm.Lock()
			defer vm.Unlock()
		}
		x.mu.Lock()
		rt.started = tctx.Err() == nil
		x.mu.Unlock()
		if !rt.started {
			x.skip(t)
			return
		}
		x.run(tctx, t)
	}()
}

// skip drops a task cancelled before it started: nothing was done, and
// the cluster wants no result.
func (x *executor) skip(t *pb.Task) {
	x.a.log.Info("task cancelled before it started", "task", t.Id, "fence", t.Fence)
	x.mu.Lock()
	delete(x.seen, taskKey{t.Id, t.Fence})
	x.mu.Unlock()
}

// cancel stops a task the cluster fenced: one not started yet never
// starts; a running one of a killable kind has its context cancelled,
// which kills the Proxmox command's process group; any other runs to its
// end (its result is refused).
func (x *executor) cancel(c *pb.CancelTask) {
	x.mu.Lock()
	rt := x.running[c.Id]
	x.mu.Unlock()
	if rt == nil || rt.fence >= c.Fence {
		return // not here, or a later incarnation
	}
	x.mu.Lock()
	started := rt.started
	x.mu.Unlock()
	if started && !killable[rt.kind] {
		x.a.log.Info("task fenced; left to finish, stopping it is not safe", "task", c.Id, "kind", rt.kind, "reason", c.Reason)
		return
	}
	x.a.log.Info("task fenced; stopping it", "task", c.Id, "kind", rt.kind, "reason", c.Reason)
	rt.cancel()
}

// delivered forgets a task once the leader has its result (or refused it).
func (x *executor) delivered(id string, fence uint64, refused bool) {
	x.mu.Lock()
	delete(x.seen, taskKey{id, fence})
	x.mu.Unlock()
	if refused {
		x.a.log.Info("result refused by the cluster (stale or not this node's)", "task", id, "fence", fence)
	}
}

// waitFor waits for running tasks up to d; it reports whether all ended.
func (x *executor) waitFor(d time.Duration) bool {
	x.mu.Lock()
	x.stopping = true
	x.mu.Unlock()
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// run executes one task and queues its result. ctx ends only when the
// cluster cancels the task; maxTaskTime bounds it.
func (x *executor) run(ctx context.Context, t *pb.Task) {
	log := x.a.log.With("task", t.Id, "kind", t.Kind, "vmid", t.Vmid, "fence", t.Fence)
	log.Info("task started")
	x.a.rep.log(t, fmt.Sprintf("%s started on %s (attempt %d)", t.Kind, x.a.cfg.Node, t.Attempt))
	tctx, cancel := context.WithTimeout(ctx, maxTaskTime)
	defer cancel()
	out, err := x.do(tctx, t)
	if err != nil && t.Vmid > 0 && x.liftStaleLock(tctx, int(t.Vmid), err) {
		out, err = x.do(tctx, t)
	}
	res := &pb.Result{Ok: err == nil}
	if err != nil {
		res.Error, res.ErrorKind = err.Error(), string(failureOf(err))
		log.Warn("task failed", "err", err, "kind", res.ErrorKind)
		x.a.rep.log(t, "failed: "+err.Error())
	} else {
		if out != nil {
			res.OutputJson, _ = json.Marshal(out)
		}
		log.Info("task done")
		x.a.rep.log(t, "done")
	}
	x.a.rep.add(&pb.TaskEvent{TaskId: t.Id, Fence: t.Fence, Event: &pb.TaskEvent_Result{Result: res}})
}

func decode[T any](t *pb.Task) (T, error) {
	var v T
	if len(t.SpecJson) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(t.SpecJson, &v); err != nil {
		return v, &pve.Error{Kind: pve.ErrInvalid, Text: "task spec: " + err.Error()}
	}
	return v, nil
}

// do performs a task idempotently: an operation whose effect is already
// there succeeds (start of a running container, destroy of a missing one,
// create of the container this task made before). The node's policy
// decides first whether the task runs at all.
func (x *executor) do(ctx context.Context, t *pb.Task) (*taskspec.Output, error) {
	rt := x.a.cfg.Runtime
	if err := x.a.cfg.Policy.Check(ctx, rt, t); err != nil {
		return nil, err
	}
	vmid := int(t.Vmid)
	ignore := func(err error, kinds ...error) error {
		for _, k := range kinds {
			if errors.Is(err, k) {
				return nil
			}
		}
		return err
	}
	switch t.Kind {
	case taskspec.Create:
		spec, err := decode[taskspec.CreateSpec](t)
		if err != nil {
			return nil, err
		}
		return &taskspec.Output{VMID: vmid}, x.create(ctx, t, spec)
	case taskspec.Start:
		return nil, ignore(rt.Start(ctx, vmid), pve.ErrAlreadyRunning)
	case taskspec.Stop:
		return nil, ignore(rt.Stop(ctx, vmid), pve.ErrNotRunning)
	case taskspec.Shutdown:
		spec, err := decode[taskspec.StopSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, ignore(rt.Shutdown(ctx, vmid, spec.TimeoutSec), pve.ErrNotRunning)
	case taskspec.Reboot:
		return nil, rt.Reboot(ctx, vmid)
	case taskspec.Destroy:
		spec, err := decode[taskspec.StopSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, ignore(x.destroy(ctx, vmid, spec.Force, spec.OpTag), pve.ErrNotFound)
	case taskspec.Snapshot:
		spec, err := decode[taskspec.SnapshotSpec](t)
		if err != nil {
			return nil, err
		}
		err = rt.Snapshot(ctx, vmid, spec.Name, spec.Description)
		if errors.Is(err, pve.ErrExists) && strings.Contains(err.Error(), "already used") {
			err = nil // made by an earlier delivery
		}
		return nil, err
	case taskspec.DeleteSnapshot:
		spec, err := decode[taskspec.SnapshotSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, ignore(rt.DeleteSnapshot(ctx, vmid, spec.Name), pve.ErrNotFound)
	case taskspec.Rollback:
		spec, err := decode[taskspec.SnapshotSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, rt.Rollback(ctx, vmid, spec.Name, spec.Start)
	case taskspec.Clone:
		spec, err := decode[taskspec.CloneSpec](t)
		if err != nil {
			return nil, err
		}
		if st, err := rt.Status(ctx, spec.NewVMID); err == nil && st.Name == spec.Hostname && st.Lock == "" {
			return &taskspec.Output{VMID: spec.NewVMID}, nil // cloned by an earlier delivery
		}
		return &taskspec.Output{VMID: spec.NewVMID}, rt.Clone(ctx, vmid, spec.NewVMID, pve.CloneOptions{Hostname: spec.Hostname, Snapshot: spec.Snapshot, Storage: spec.Storage, Full: true})
	case taskspec.Backup:
		spec, err := decode[taskspec.BackupSpec](t)
		if err != nil {
			return nil, err
		}
		return x.backup(ctx, t, spec)
	case taskspec.Restore:
		spec, err := decode[taskspec.RestoreSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, rt.Restore(ctx, vmid, spec.Volid, pve.RestoreOptions{Storage: spec.Storage, Force: spec.Force, Hostname: spec.Hostname, Unique: spec.Unique, Net0: spec.Net0})
	case taskspec.DeleteBackup:
		spec, err := decode[taskspec.VolumeSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, ignore(rt.DeleteBackup(ctx, spec.Volid), pve.ErrNotFound)
	case taskspec.Exec:
		spec, err := decode[taskspec.ExecSpec](t)
		if err != nil {
			return nil, err
		}
		res, err := rt.Exec(ctx, vmid, spec.Argv...)
		if err != nil {
			return nil, err
		}
		return &taskspec.Output{Code: res.Code, Stdout: res.Stdout, Stderr: res.Stderr}, nil
	case taskspec.Push:
		spec, err := decode[taskspec.PushSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, rt.Push(ctx, vmid, spec.Content, spec.Path, spec.Perms)
	case taskspec.SetConfig:
		spec, err := decode[taskspec.ConfigSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, rt.SetConfig(ctx, vmid, spec.Set, spec.Delete)
	case taskspec.Forwards:
		spec, err := decode[taskspec.ForwardsSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, x.a.fw.set(ctx, spec)
	case taskspec.Inspect:
		st, err := rt.Status(ctx, vmid)
		if err != nil {
			return nil, err
		}
		return &taskspec.Output{VMID: vmid, Status: st.Status, Name: st.Name}, nil
	case taskspec.WriteEnv:
		spec, err := decode[taskspec.EnvSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, x.writeEnv(ctx, t, vmid, spec)
	case taskspec.DownloadTemplate:
		spec, err := decode[taskspec.TemplateSpec](t)
		if err != nil {
			return nil, err
		}
		return nil, x.ensureTemplate(ctx, t, orDefault(spec.Storage, "local"), spec.Template)
	}
	return nil, &pve.Error{Kind: pve.ErrInvalid, Text: "unknown task kind " + t.Kind}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (x *executor) ensureTemplate(ctx context.Context, t *pb.Task, storage, name string) error {
	have, err := x.a.cfg.Runtime.Templates(ctx, storage)
	if err != nil {
		return err
	}
	for _, h := range have {
		if h == name {
			return nil
		}
	}
	x.a.rep.log(t, "downloading template "+name)
	return x.a.cfg.Runtime.DownloadTemplate(ctx, storage, name)
}

// create makes the task's container unless this task made it already: a
// create still running from an earlier delivery (or an agent that died)
// is waited for; a container with this task's tag is the result; any other
// container on the VMID is someone else's ("exists"), and the coordinator
// moves the work to another VMID.
func (x *executor) create(ctx context.Context, t *pb.Task, spec taskspec.CreateSpec) error {
	rt := x.a.cfg.Runtime
	vmid := int(t.Vmid)
	tag := taskspec.Tag(t.Id)
	active, err := rt.ActiveTasks(ctx, vmid)
	if err != nil {
		return err
	}
	for _, at := range active {
		if at.Type == "vzcreate" {
			x.a.rep.log(t, "waiting for the create task already running: "+at.UPID)
			_ = rt.WaitTask(ctx, at.UPID)
		}
	}
	st, err := rt.Status(ctx, vmid)
	ours := err == nil && spec.OpTag != "" && st.HasTag(spec.OpTag) && st.HasTag(taskspec.ManagedTag)
	if ours && st.Lock == "create" {
		// An earlier attempt's create was killed (cancelled or past its
		// deadline; none runs now): what it left is half made.
		x.a.rep.log(t, fmt.Sprintf("removing CT %d, left half made by an earlier attempt", vmid))
		if err := x.destroy(ctx, vmid, true, spec.OpTag); err != nil && !errors.Is(err, pve.ErrNotFound) {
			return err
		}
		st, err = rt.Status(ctx, vmid)
		ours = false
	}
	switch {
	case err == nil && st.HasTag(tag):
		x.a.rep.log(t, fmt.Sprintf("CT %d was created by an earlier delivery of this task", vmid))
	case ours && st.Lock == "":
		x.a.rep.log(t, fmt.Sprintf("CT %d was created by an earlier attempt of this operation", vmid))
	case err == nil:
		return &pve.Error{Kind: pve.ErrExists, VMID: fmt.Sprint(vmid), Text: fmt.Sprintf("CT %d already exists on node '%s' (not made by this task)", vmid, x.a.cfg.Node)}
	case errors.Is(err, pve.ErrNotFound):
		store := orDefault(spec.TemplateFrom, "local")
		if err := x.ensureTemplate(ctx, t, store, spec.Template); err != nil {
			return err
		}
		features := spec.Features
		if features == "" && !spec.Privileged {
			features = "nesting=1,keyctl=1"
		}
		x.a.rep.log(t, fmt.Sprintf("creating CT %d (%s)", vmid, spec.Hostname))
		err = rt.Create(ctx, pve.CreateSpec{
			VMID: vmid, Template: store + ":vztmpl/" + spec.Template, Hostname: spec.Hostname,
			Cores: spec.Cores, MemoryMB: spec.MemoryMB, SwapMB: spec.SwapMB,
			RootFS: fmt.Sprintf("%s:%d", orDefault(spec.Storage, "local-lvm"), max(spec.DiskGB, 1)),
			Net0:   spec.Net0, Nameserver: spec.Nameserver, Unprivileged: !spec.Privileged, Features: features,
			Tags: append(append([]string{taskspec.ManagedTag, tag}, opTag(spec)...), spec.Tags...),
		})
		if err != nil {
			return err
		}
	default:
		return err
	}
	if spec.Start {
		if err := rt.Start(ctx, vmid); err != nil && !errors.Is(err, pve.ErrAlreadyRunning) {
			return err
		}
	}
	return nil
}

func opTag(spec taskspec.CreateSpec) []string {
	if spec.OpTag == "" {
		return nil
	}
	return []string{spec.OpTag}
}

// destroy removes a container. One whose create was killed (cancelled,
// or past its deadline) keeps the lock "create" with no create running:
// if that create was the operation's (the container carries opTag), the
// lock is lifted and the container removed, as the undo of that create.
// Any other "create" lock (a clone or restore still writing the
// container) is left alone, and the destroy fails and is retried.
func (x *executor) destroy(ctx context.Context, vmid int, force bool, opTag string) error {
	rt := x.a.cfg.Runtime
	err := rt.Destroy(ctx, vmid, force)
	var pe *pve.Error
	if !errors.As(err, &pe) || !errors.Is(err, pve.ErrLocked) || pe.Lock != "create" {
		return err
	}
	active, aerr := rt.ActiveTasks(ctx, vmid)
	if aerr != nil {
		return err
	}
	for _, t := range active {
		if t.Type == "vzcreate" {
			return err // a create still runs: the next attempt waits for it
		}
	}
	st, serr := rt.Status(ctx, vmid)
	if serr != nil || opTag == "" || !st.HasTag(opTag) || !st.HasTag(taskspec.ManagedTag) {
		return err
	}
	x.a.log.Info("lifting the lock of an abandoned create before destroying it", "vmid", vmid)
	if uerr := rt.Unlock(ctx, vmid); uerr != nil {
		return fmt.Errorf("unlock CT %d: %w", vmid, uerr)
	}
	return rt.Destroy(ctx, vmid, force)
}

// liftStaleLock lifts the lock of a Proximity container that no task of
// the node holds, and reports whether it did. A worker that died (killed,
// the node's daemon restarted) leaves its lock behind, as in Proxmox: a
// clone leaves "disk" on its source, a backup "backup", a snapshot
// "snapshot", and every later operation on the container, the
// operation's own retries and the removal of a clone's snapshot included,
// would fail "CT is locked" for good. Those workers are listed among the
// container's active tasks while they run (a clone's task ID is its
// source), so the lock is lifted only when none is. "create" is not
// lifted here: a clone or restore writing a new container runs under
// another ID (destroy handles an abandoned create), and "mounted" has no
// task at all.
func (x *executor) liftStaleLock(ctx context.Context, vmid int, err error) bool {
	var pe *pve.Error
	if !errors.As(err, &pe) || !errors.Is(err, pve.ErrLocked) || pe.Lock == "" || pe.Lock == "create" || pe.Lock == "mounted" {
		return false
	}
	rt := x.a.cfg.Runtime
	active, aerr := rt.ActiveTasks(ctx, vmid)
	if aerr != nil || len(active) > 0 {
		return false
	}
	st, serr := rt.Status(ctx, vmid)
	if serr != nil || st.Lock != pe.Lock || !st.HasTag(taskspec.ManagedTag) {
		return false
	}
	x.a.log.Info("lifting the lock of a task that died", "vmid", vmid, "lock", st.Lock)
	if uerr := rt.Unlock(ctx, vmid); uerr != nil {
		x.a.log.Warn("unlock", "vmid", vmid, "err", uerr)
		return false
	}
	return true
}

// backup makes one archive per task: an archive whose notes carry this
// task's tag is the result of an earlier delivery.
func (x *executor) backup(ctx context.Context, t *pb.Task, spec taskspec.BackupSpec) (*taskspec.Output, error) {
	rt := x.a.cfg.Runtime
	storage := orDefault(spec.Storage, "local")
	tag := taskspec.Tag(t.Id)
	have, err := rt.Backups(ctx, storage, int(t.Vmid))
	if err != nil {
		return nil, err
	}
	for _, b := range have {
		if strings.Contains(b.Notes, tag) {
			return &taskspec.Output{Volid: b.Volid}, nil
		}
	}
	volid, err := rt.Backup(ctx, int(t.Vmid), pve.BackupOptions{Storage: storage, Mode: spec.Mode, Notes: "{{guestname}} " + tag})
	if err != nil {
		return nil, err
	}
	return &taskspec.Output{Volid: volid}, nil
}

// writeEnv writes the .env file (see taskspec.EnvSpec for the modes);
// generated secrets are made here and never leave the node. Every value
// is checked again (dotenv.Format refuses what dotenv.CheckValue refuses)
// and single-quoted, so no value can add a line or be interpolated.
func (x *executor) writeEnv(ctx context.Context, t *pb.Task, vmid int, spec taskspec.EnvSpec) error {
	rt := x.a.cfg.Runtime
	prevPath := spec.Path + ".prev"
	switch spec.Mode {
	case taskspec.EnvRestore:
		prev, ok, err := readFile(ctx, rt, vmid, prevPath)
		if err != nil {
			return err
		}
		if !ok || !strings.HasPrefix(string(prev), "# proximity-op "+spec.Op+"\n") {
			// The update of this operation never saved the file, so it
			// never changed it: there is nothing to put back.
			x.a.rep.log(t, "write_env: "+spec.Path+" was not changed by "+spec.Op+"; nothing to restore")
			return nil
		}
		m, err := dotenv.Parse(prev)
		if err != nil {
			return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: " + prevPath + ": " + err.Error()}
		}
		return pushEnv(ctx, rt, vmid, spec.Path, m)
	case taskspec.EnvUpdate:
		marker := "# proximity-op " + spec.Op + "\n"
		prev, ok, err := readFile(ctx, rt, vmid, prevPath)
		if err != nil {
			return err
		}
		if !ok || !strings.HasPrefix(string(prev), marker) {
			// First delivery of this operation: save the file as it is.
			cur, _, err := readFile(ctx, rt, vmid, spec.Path)
			if err != nil {
				return err
			}
			m, err := dotenv.Parse(cur)
			if err != nil {
				return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: " + spec.Path + ": " + err.Error()}
			}
			body, err := dotenv.Format(m)
			if err != nil {
				return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: " + spec.Path + ": " + err.Error()}
			}
			prev = append([]byte(marker), body...)
			if err := rt.Push(ctx, vmid, prev, prevPath, "0600"); err != nil {
				return err
			}
		}
		m, err := dotenv.Parse(prev)
		if err != nil {
			return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: " + prevPath + ": " + err.Error()}
		}
		for k, v := range spec.Values {
			m[k] = v
		}
		for k, n := range spec.Generate {
			if _, ok := m[k]; ok {
				continue
			}
			if m[k], err = secret(n); err != nil {
				return err
			}
		}
		return pushEnv(ctx, rt, vmid, spec.Path, m)
	case taskspec.EnvCreate:
	default:
		return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: unknown mode " + spec.Mode}
	}
	res, err := rt.Exec(ctx, vmid, "test", "-f", spec.Path)
	if err != nil {
		return err
	}
	if res.Code == 0 {
		return nil
	}
	vals := map[string]string{}
	for k, v := range spec.Values {
		vals[k] = v
	}
	for k, n := range spec.Generate {
		if _, given := vals[k]; given {
			continue
		}
		s, err := secret(n)
		if err != nil {
			return err
		}
		vals[k] = s
	}
	return pushEnv(ctx, rt, vmid, spec.Path, vals)
}

// pushEnv formats m and writes it to path, readable by root only.
func pushEnv(ctx context.Context, rt pve.Runtime, vmid int, path string, m map[string]string) error {
	body, err := dotenv.Format(m)
	if err != nil {
		return &pve.Error{Kind: pve.ErrInvalid, Text: "write_env: " + err.Error()}
	}
	return rt.Push(ctx, vmid, body, path, "0600")
}

// readFile reads a file of the container; ok is false if there is none.
func readFile(ctx context.Context, rt pve.Runtime, vmid int, path string) (body []byte, ok bool, err error) {
	res, err := rt.Exec(ctx, vmid, "test", "-f", path)
	if err != nil {
		return nil, false, err
	}
	if res.Code != 0 {
		return nil, false, nil
	}
	res, err = rt.Exec(ctx, vmid, "cat", path)
	if err != nil {
		return nil, false, err
	}
	if res.Code != 0 {
		return nil, false, &pve.Error{Kind: pve.ErrInvalid, Text: fmt.Sprintf("cat %s: exit %d", path, res.Code)}
	}
	return []byte(res.Stdout), true, nil
}

// secret returns n uniformly random base32 characters (5 bits each).
func secret(n int) (string, error) {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()[:n], nil
}
