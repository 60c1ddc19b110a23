package pve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// The contract suite runs the real adapter against the simulator: the
// pvesim binary on a private PATH as pct, vzdump and pveam, and its HTTPS
// API, sharing one state directory.

var binDir string

func TestMain(m *testing.M) {
	// Local re-executes this binary to start a tool with its umask.
	pve.RunToolWithUmask()
	dir, err := os.MkdirTemp("", "pve-contract-")
	if err != nil {
		panic(err)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "pvesim"), "github.com/proximity-ve/proximity/internal/pvesim/cmd/pvesim").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build pvesim: %v\n%s", err, out)
		os.Exit(1)
	}
	for _, t := range pvesim.Tools {
		if err := os.Symlink("pvesim", filepath.Join(dir, t)); err != nil {
			panic(err)
		}
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type node struct {
	t   *testing.T
	st  *pvesim.Store
	rt  *pve.Local
	srv *pvesim.Server
}

const token = "proximity@pve!agent=8b3c5f0e-1111-2222-3333-444455556666"

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	st, err := pvesim.Open(dir, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(); err != nil {
		t.Fatal(err)
	}
	srv, err := pvesim.Serve(st, "127.0.0.1:0", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	id, secret, _ := strings.Cut(token, "=")
	rt, err := pve.NewLocal(pve.Options{
		Node: "pve1", APIURL: srv.URL(), TokenID: id, Secret: secret, CAFile: srv.CertPath,
		BinDir: binDir, Env: []string{"PVESIM_DIR=" + dir, "PVESIM_NODE=pve1"}, WorkDir: t.TempDir(),
		APITimeout: 5 * time.Second, CommandTimeout: 10 * time.Second, TaskTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, st: st, rt: rt, srv: srv}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

const debian = "debian-13-standard_13.6-1_amd64.tar.zst"

func (n *node) must(err error) {
	n.t.Helper()
	if err != nil {
		n.t.Fatal(err)
	}
}

// wantKind checks that err is a *pve.Error of the given kind.
func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	var pe *pve.Error
	if !errors.As(err, &pe) || !errors.Is(err, kind) {
		t.Fatalf("%s: got %v (%T), want kind %v", what, err, err, kind)
	}
}

func (n *node) create(vmid int, hostname string) {
	n.t.Helper()
	n.must(n.rt.Create(ctx(n.t), pve.CreateSpec{VMID: vmid, Template: "local:vztmpl/" + debian, Hostname: hostname,
		Cores: 1, MemoryMB: 1024, RootFS: "local-lvm:8", Net0: "name=eth0,bridge=vmbr0,ip=dhcp",
		Unprivileged: true, Features: "nesting=1,keyctl=1", Tags: []string{"proximity", "app-x"}, Password: "s3cret-pw"}))
}

func TestTemplates(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	avail, err := n.rt.AvailableTemplates(c)
	n.must(err)
	if !slices.Contains(avail, debian) {
		t.Fatalf("available: %v", avail)
	}
	have, err := n.rt.Templates(c, "local")
	n.must(err)
	if len(have) != 0 {
		t.Fatalf("fresh node has templates %v", have)
	}
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	if have, _ := n.rt.Templates(c, "local"); !slices.Equal(have, []string{debian}) {
		t.Fatalf("after download: %v", have)
	}
	wantKind(t, "unknown template", n.rt.DownloadTemplate(c, "local", "nope-1.0_amd64.tar.zst"), pve.ErrInvalid)
}

func TestLifecycle(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(120, "web1")
	wantKind(t, "create twice", n.rt.Create(c, pve.CreateSpec{VMID: 120, Template: "local:vztmpl/" + debian}), pve.ErrExists)

	st, err := n.rt.Status(c, 120)
	n.must(err)
	if st.Status != "stopped" || st.Name != "web1" || st.MaxMem != 1024<<20 || !st.HasTag("proximity") {
		t.Fatalf("status after create: %+v", st)
	}
	cfg, err := n.rt.Config(c, 120)
	n.must(err)
	if cfg["features"] != "nesting=1,keyctl=1" || cfg["unprivileged"] != "1" || cfg["memory"] != "1024" {
		t.Fatalf("config: %v", cfg)
	}
	wantKind(t, "stop stopped", n.rt.Stop(c, 120), pve.ErrNotRunning)
	_, err = n.rt.Exec(c, 120, "true")
	wantKind(t, "exec stopped", err, pve.ErrNotRunning)
	wantKind(t, "push stopped", n.rt.Push(c, 120, []byte("x"), "/etc/x", ""), pve.ErrNotRunning)

	n.must(n.rt.Start(c, 120))
	wantKind(t, "start running", n.rt.Start(c, 120), pve.ErrAlreadyRunning)
	wantKind(t, "destroy running", n.rt.Destroy(c, 120, false), pve.ErrRunning)
	st, _ = n.rt.Status(c, 120)
	if st.Status != "running" || st.Mem == 0 || st.Uptime > 5 {
		t.Fatalf("running status: %+v", st)
	}

	n.must(n.rt.Push(c, 120, []byte("services: {}\n"), "/opt/app/compose.yaml", "0600"))
	res, err := n.rt.Exec(c, 120, "cat", "/opt/app/compose.yaml")
	n.must(err)
	if res.Code != 0 || res.Stdout != "services: {}\n" {
		t.Fatalf("cat: %+v", res)
	}
	res, err = n.rt.Exec(c, 120, "cat", "/missing")
	n.must(err)
	if res.Code != 1 || !strings.Contains(res.Stderr, "No such file") {
		t.Fatalf("cat missing: %+v", res)
	}
	res, err = n.rt.Exec(c, 120, "ip", "-4", "addr", "show", "dev", "eth0")
	n.must(err)
	if !strings.Contains(res.Stdout, "inet 10.") {
		t.Fatalf("ip: %+v", res)
	}

	n.must(n.rt.SetConfig(c, 120, map[string]string{"memory": "2048"}, []string{"tags"}))
	if cfg, _ := n.rt.Config(c, 120); cfg["memory"] != "2048" || cfg["tags"] != "" {
		t.Fatalf("after set: %v", cfg)
	}
	wantKind(t, "set bad", n.rt.SetConfig(c, 120, map[string]string{"memory": "8"}, nil), pve.ErrInvalid)

	n.must(n.rt.Reboot(c, 120))
	n.must(n.rt.Shutdown(c, 120, 5))
	wantKind(t, "reboot stopped", n.rt.Reboot(c, 120), pve.ErrNotRunning)
	n.must(n.rt.Start(c, 120))
	n.must(n.rt.Stop(c, 120))
	n.must(n.rt.Destroy(c, 120, false))
	_, err = n.rt.Status(c, 120)
	wantKind(t, "status destroyed", err, pve.ErrNotFound)
	wantKind(t, "destroy missing", n.rt.Destroy(c, 120, false), pve.ErrNotFound)
	wantKind(t, "start missing", n.rt.Start(c, 120), pve.ErrNotFound)
}

func TestInventory(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(101, "a")
	n.create(102, "b")
	n.must(n.st.Take(150, true)) // a qemu VM
	n.must(n.st.Take(151, false))
	for _, stringIDs := range []bool{false, true} {
		n.must(n.st.SetFaults(pvesim.Faults{StringVMID: stringIDs}))
		cts, err := n.rt.Containers(c)
		n.must(err)
		var ids []int
		for _, ct := range cts {
			ids = append(ids, ct.VMID)
		}
		if !slices.Equal(ids, []int{101, 102, 151}) {
			t.Fatalf("string vmids %v: containers %v", stringIDs, ids)
		}
		used, err := n.rt.UsedVMIDs(c)
		n.must(err)
		if !slices.Equal(used, []int{101, 102, 150, 151}) {
			t.Fatalf("string vmids %v: used %v", stringIDs, used)
		}
	}
	ns, err := n.rt.Node(c)
	n.must(err)
	if ns.MemTotal == 0 || ns.MemFree == 0 || ns.MemFree > ns.MemTotal || ns.DiskTotal == 0 {
		t.Fatalf("node: %+v", ns)
	}
	// The storages, with what they hold (GET /nodes/{node}/storage).
	sts, err := n.rt.Storages(c)
	n.must(err)
	if len(sts) != 2 || sts[0].Name != "local" || !sts[0].Holds("backup") || sts[0].Holds("rootdir") ||
		sts[1].Name != "local-lvm" || sts[1].Type != "lvmthin" || !sts[1].Holds("rootdir") || sts[1].Total == 0 || sts[0].Shared || sts[1].Shared {
		t.Fatalf("storages: %+v", sts)
	}
	// A shared storage says so (a backup on it can be restored on another node).
	n.must(n.st.Update(func(nd *pvesim.Node) error {
		nd.Storages = append(nd.Storages, pvesim.Storage{ID: "nfs", Type: "nfs", Content: []string{"backup"}, Path: t.TempDir(), Shared: true})
		return nil
	}))
	sts, err = n.rt.Storages(c)
	n.must(err)
	if len(sts) != 3 || sts[2].Name != "nfs" || !sts[2].Shared || sts[0].Shared {
		t.Fatalf("storages with a shared one: %+v", sts)
	}
}

func TestSnapshotsAndClone(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(130, "src")
	n.must(n.rt.Snapshot(c, 130, "before", "first"))
	wantKind(t, "snapshot twice", n.rt.Snapshot(c, 130, "before", ""), pve.ErrExists)
	snaps, err := n.rt.Snapshots(c, 130)
	n.must(err)
	if len(snaps) != 1 || snaps[0].Name != "before" || snaps[0].Description != "first" {
		t.Fatalf("snapshots: %+v", snaps)
	}
	n.must(n.rt.SetConfig(c, 130, map[string]string{"memory": "4096"}, nil))
	n.must(n.rt.Rollback(c, 130, "before", false))
	if cfg, _ := n.rt.Config(c, 130); cfg["memory"] != "1024" {
		t.Fatalf("rollback kept memory %s", cfg["memory"])
	}
	wantKind(t, "rollback missing", n.rt.Rollback(c, 130, "nope", false), pve.ErrNotFound)

	n.must(n.rt.Start(c, 130))
	wantKind(t, "full clone of running", n.rt.Clone(c, 130, 131, pve.CloneOptions{Full: true}), pve.ErrUnsupported)
	n.must(n.rt.Clone(c, 130, 131, pve.CloneOptions{Full: true, Snapshot: "before", Hostname: "copy"}))
	wantKind(t, "clone onto existing", n.rt.Clone(c, 130, 131, pve.CloneOptions{Full: true, Snapshot: "before"}), pve.ErrExists)
	st, err := n.rt.Status(c, 131)
	n.must(err)
	if st.Name != "copy" || st.Status != "stopped" || st.Lock != "" {
		t.Fatalf("clone: %+v", st)
	}
	if src, _ := n.rt.Status(c, 130); src.Lock != "" {
		t.Fatalf("source still locked: %+v", src)
	}
	n.must(n.rt.DeleteSnapshot(c, 130, "before"))
	wantKind(t, "delete missing snapshot", n.rt.DeleteSnapshot(c, 130, "before"), pve.ErrNotFound)
}

func TestBackupRestore(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(140, "db")
	n.must(n.rt.Start(c, 140))
	n.must(n.rt.Push(c, 140, []byte("v1"), "/data/version", ""))
	volid, err := n.rt.Backup(c, 140, pve.BackupOptions{Notes: "{{guestname}} before update"})
	n.must(err)
	if !strings.HasPrefix(volid, "local:backup/vzdump-lxc-140-") || !strings.HasSuffix(volid, ".tar.zst") {
		t.Fatalf("volid %q", volid)
	}
	list, err := n.rt.Backups(c, "local", 140)
	n.must(err)
	if len(list) != 1 || list[0].Volid != volid || list[0].Notes != "db before update" || list[0].Size == 0 {
		t.Fatalf("backups: %+v", list)
	}
	_, err = n.rt.Backup(c, 999, pve.BackupOptions{})
	wantKind(t, "backup missing", err, pve.ErrNotFound)

	n.must(n.rt.Push(c, 140, []byte("v2"), "/data/version", ""))
	wantKind(t, "restore over running", n.rt.Restore(c, 140, volid, pve.RestoreOptions{Force: true}), pve.ErrRunning)
	wantKind(t, "restore over existing", n.rt.Restore(c, 140, volid, pve.RestoreOptions{}), pve.ErrExists)
	n.must(n.rt.Stop(c, 140))
	n.must(n.rt.Restore(c, 140, volid, pve.RestoreOptions{Force: true, Storage: "local-lvm"}))
	n.must(n.rt.Start(c, 140))
	if res, _ := n.rt.Exec(c, 140, "cat", "/data/version"); res.Stdout != "v1" {
		t.Fatalf("restored file: %+v", res)
	}
	n.must(n.rt.Restore(c, 141, volid, pve.RestoreOptions{Unique: true, Hostname: "db-copy", Net0: "name=eth0,bridge=vmbr0,ip=10.0.0.9/24,gw=10.0.0.1"}))
	if st, _ := n.rt.Status(c, 141); st.Name != "db-copy" {
		t.Fatalf("restore to new vmid: %+v", st)
	}
	if cfg, _ := n.rt.Config(c, 141); !strings.Contains(cfg["net0"], "ip=10.0.0.9/24") {
		t.Fatalf("restore with a new net0: %+v", cfg)
	}
	n.must(n.rt.DeleteBackup(c, volid))
	if list, _ := n.rt.Backups(c, "local", 0); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
	wantKind(t, "delete missing backup", n.rt.DeleteBackup(c, volid), pve.ErrNotFound)
}

func TestFaults(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))

	// A transient failure is a lock timeout inside the task.
	n.must(n.st.SetFaults(pvesim.Faults{FailNext: 1}))
	err := n.rt.Create(c, pve.CreateSpec{VMID: 160, Template: "local:vztmpl/" + debian, RootFS: "local-lvm:4"})
	wantKind(t, "transient", err, pve.ErrLocked)
	if _, err := n.rt.Status(c, 160); !errors.Is(err, pve.ErrNotFound) {
		t.Fatalf("failed create left a container: %v", err)
	}
	n.create(160, "ok-after-retry")

	// A hung task ends at the caller's deadline.
	n.must(n.st.SetFaults(pvesim.Faults{Hang: []string{"vzstart"}}))
	short, cancel := context.WithTimeout(c, 500*time.Millisecond)
	defer cancel()
	wantKind(t, "hang", n.rt.Start(short, 160), pve.ErrTimeout)

	// A crashed worker leaves its lock and an "unexpected status" task.
	n.must(n.st.SetFaults(pvesim.Faults{Crash: []string{"vzsnapshot"}}))
	if err := n.rt.Snapshot(c, 160, "s1", ""); err == nil {
		t.Fatal("crashed snapshot reported success")
	}
	st, err := n.rt.Status(c, 160)
	n.must(err)
	if st.Lock != "snapshot" {
		t.Fatalf("lock after crash: %+v", st)
	}
	n.must(n.st.SetFaults(pvesim.Faults{}))
	wantKind(t, "locked", n.rt.Start(c, 160), pve.ErrLocked)

	// Latency applies to tasks and the API.
	n.must(n.st.SetFaults(pvesim.Faults{LatencyMS: 300}))
	began := time.Now()
	_, err = n.rt.Containers(c)
	n.must(err)
	if time.Since(began) < 300*time.Millisecond {
		t.Fatalf("latency fault not applied: %v", time.Since(began))
	}
}

// TestWaitsForRunningTask: an operation whose task is already running
// (started by an agent that died) is waited for, not started again.
func TestWaitsForRunningTask(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.must(n.st.SetFaults(pvesim.Faults{TaskMS: 1500}))
	// Start a create in a process of its own, as a dying agent would leave.
	cmd := exec.Command(filepath.Join(binDir, "pct"), "create", "170", "local:vztmpl/"+debian, "--hostname", "first", "--rootfs", "local-lvm:4")
	cmd.Env = append(os.Environ(), "PVESIM_DIR="+n.st.Dir, "PVESIM_NODE=pve1")
	n.must(cmd.Start())
	defer cmd.Wait()
	var active []pve.TaskInfo
	for deadline := time.Now().Add(5 * time.Second); len(active) == 0 && time.Now().Before(deadline); {
		var err error
		active, err = n.rt.ActiveTasks(c, 170)
		n.must(err)
		time.Sleep(20 * time.Millisecond)
	}
	if len(active) != 1 || active[0].Type != "vzcreate" {
		t.Fatalf("active tasks: %+v", active)
	}
	// The second create waits for the first and reports its success
	// instead of failing with "already exists".
	n.must(n.rt.Create(c, pve.CreateSpec{VMID: 170, Template: "local:vztmpl/" + debian, Hostname: "second", RootFS: "local-lvm:4"}))
	st, err := n.rt.Status(c, 170)
	n.must(err)
	if st.Name != "first" || st.Lock != "" {
		t.Fatalf("after waiting: %+v", st)
	}
	n.must(n.rt.WaitTask(c, active[0].UPID))
}

// TestReadFailures: the read methods' typed failures, and a failed task's
// error through WaitTask.
func TestReadFailures(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	_, err := n.rt.Config(c, 404)
	wantKind(t, "config of a missing CT", err, pve.ErrNotFound)
	_, err = n.rt.Snapshots(c, 404)
	wantKind(t, "snapshots of a missing CT", err, pve.ErrNotFound)
	_, err = n.rt.Exec(c, 404, "true")
	wantKind(t, "exec in a missing CT", err, pve.ErrNotFound)
	_, err = n.rt.Templates(c, "local-lvm")
	if err == nil || !strings.Contains(err.Error(), "does not support templates") {
		t.Fatalf("templates on local-lvm: %v", err)
	}
	_, err = n.rt.Backups(c, "nope", 0)
	if err == nil || !strings.Contains(err.Error(), "storage 'nope' does not exist") {
		t.Fatalf("backups on a missing storage: %v", err)
	}
	wantKind(t, "restore of a missing archive", n.rt.Restore(c, 405, "local:backup/none.tar.zst", pve.RestoreOptions{}), pve.ErrNotFound)

	// A task that failed: its exit status comes back typed.
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(180, "x")
	n.must(n.st.SetFaults(pvesim.Faults{FailNext: 1}))
	_ = n.rt.Start(c, 180)
	n.must(n.st.SetFaults(pvesim.Faults{}))
	var failed string
	n.must(n.st.View(func(nd *pvesim.Node) error {
		for _, tk := range nd.Tasks {
			if tk.Type == "vzstart" && tk.Exit != "OK" {
				failed = tk.UPID
			}
		}
		return nil
	}))
	wantKind(t, "wait for a failed task", n.rt.WaitTask(c, failed), pve.ErrLocked)
	err = n.rt.WaitTask(c, "UPID:pve1:00000001:00000007:00000000:vzstart:1:root@pam:")
	wantKind(t, "wait for an unknown task", err, pve.ErrNotFound)
}

// TestExecStream: a command's output line by line as it comes (a file,
// the Compose project's logs, followed), the follow ended by the caller
// or by the project stopping, and the errors of a stopped container.
func TestExecStream(t *testing.T) {
	n := newNode(t)
	c := ctx(t)
	n.must(n.rt.DownloadTemplate(c, "local", debian))
	n.create(121, "logs1")
	collect := func(ctx context.Context, argv ...string) ([]string, pve.ExecResult, error) {
		var lines []string
		res, err := n.rt.ExecStream(ctx, 121, argv, func(l string) error { lines = append(lines, l); return nil })
		return lines, res, err
	}
	_, err := n.rt.ExecStream(c, 121, []string{"true"}, func(string) error { return nil })
	wantKind(t, "stream in a stopped container", err, pve.ErrNotRunning)
	n.must(n.rt.Start(c, 121))

	n.must(n.rt.Push(c, 121, []byte("A=1\nB='two words'\n"), "/opt/proximity/app/.env", "0600"))
	lines, res, err := collect(c, "cat", "/opt/proximity/app/.env")
	n.must(err)
	if res.Code != 0 || !slices.Equal(lines, []string{"A=1", "B='two words'"}) {
		t.Fatalf("cat: %q %+v", lines, res)
	}
	_, res, err = collect(c, "cat", "/missing")
	n.must(err)
	if res.Code != 1 || !strings.Contains(res.Stderr, "No such file") {
		t.Fatalf("cat missing: %+v", res)
	}

	compose := "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n  db:\n    image: postgres\n"
	n.must(n.rt.Push(c, 121, []byte(compose), "/opt/proximity/app/compose.yaml", "0644"))
	if res, err := n.rt.Exec(c, 121, "sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl"); err != nil || res.Code != 0 {
		t.Fatalf("docker install: %+v %v", res, err)
	}
	logs := []string{"docker", "compose", "--project-directory", "/opt/proximity/app", "logs", "--no-color"}
	lines, _, err = collect(c, append(logs, "--tail", "5")...)
	n.must(err)
	if len(lines) != 0 {
		t.Fatalf("logs of a project that is not up: %q", lines)
	}
	if res, err := n.rt.Exec(c, 121, "docker", "compose", "--project-directory", "/opt/proximity/app", "up", "-d", "--remove-orphans"); err != nil || res.Code != 0 {
		t.Fatalf("up: %+v %v", res, err)
	}
	lines, _, err = collect(c, append(logs, "--tail", "1", "--timestamps")...)
	n.must(err)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "app-db-1   | ") {
		t.Fatalf("tail 1: %q", lines)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(lines[0])[2]); err != nil {
		t.Fatalf("no timestamp in %q: %v", lines[0], err)
	}
	_, res, err = collect(c, append(logs, "--since", "yesterday")...)
	n.must(err)
	if res.Code == 0 || !strings.Contains(res.Stderr, "since") {
		t.Fatalf("a bad --since: %+v", res)
	}

	// Follow: the first new line comes while the command runs; the
	// caller's error stops it and is returned as is.
	enough := errors.New("enough")
	var got []string
	_, err = n.rt.ExecStream(c, 121, append(logs, "--tail", "0", "--follow"), func(l string) error {
		got = append(got, l)
		return enough
	})
	if !errors.Is(err, enough) || len(got) != 1 || !strings.Contains(got[0], "| ") {
		t.Fatalf("follow stopped by the reader: %q %v", got, err)
	}
	// Cancelled by its context.
	fctx, cancel := context.WithCancel(c)
	_, err = n.rt.ExecStream(fctx, 121, append(logs, "--tail", "0", "-f"), func(string) error { cancel(); return nil })
	wantKind(t, "follow cancelled", err, pve.ErrTimeout)
	// Ended by the project going down.
	done := make(chan error, 1)
	go func() {
		_, res, err := collect(c, append(logs, "--tail", "0", "--follow")...)
		if err == nil && res.Code != 0 {
			err = fmt.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		done <- err
	}()
	if res, err := n.rt.Exec(c, 121, "docker", "compose", "--project-directory", "/opt/proximity/app", "down"); err != nil || res.Code != 0 {
		t.Fatalf("down: %+v %v", res, err)
	}
	select {
	case err := <-done:
		n.must(err)
	case <-c.Done():
		t.Fatal("logs --follow went on after the project went down")
	}
}
