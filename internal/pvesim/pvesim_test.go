package pvesim

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type sim struct {
	t   *testing.T
	dir string
}

func newSim(t *testing.T) *sim {
	t.Helper()
	s := &sim{t: t, dir: t.TempDir()}
	if code, _, errs := s.run("pvesim", "init"); code != 0 {
		t.Fatalf("init: %d %s", code, errs)
	}
	return s
}

func (s *sim) run(argv0 string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := map[string]string{"PVESIM_DIR": s.dir, "PVESIM_NODE": "pve"}
	code := Main(argv0, args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func (s *sim) ok(argv0 string, args ...string) string {
	s.t.Helper()
	code, out, errs := s.run(argv0, args...)
	if code != 0 {
		s.t.Fatalf("%s %v: exit %d: %s", argv0, args, code, errs)
	}
	return out
}

// fails checks exit 255 and the exact stderr.
func (s *sim) fails(want string, argv0 string, args ...string) {
	s.t.Helper()
	code, _, errs := s.run(argv0, args...)
	if code != 255 || errs != want+"\n" {
		s.t.Fatalf("%s %v: exit %d, stderr %q; want 255 and %q", argv0, args, code, errs, want)
	}
}

const debian = "debian-13-standard_13.6-1_amd64.tar.zst"

func (s *sim) withTemplate() {
	s.ok("pveam", "download", "local", debian)
}

func TestPveam(t *testing.T) {
	s := newSim(t)
	if out := s.ok("pveam", "available"); !strings.Contains(out, "system          "+debian+strings.Repeat(" ", 60-len(debian))+" amd64\n") {
		t.Fatalf("available:\n%q", out)
	}
	if out := s.ok("pveam", "list", "local"); out != "NAME                                                         SIZE  \n" {
		t.Fatalf("empty list: %q", out)
	}
	s.withTemplate()
	want := "local:vztmpl/" + debian
	if out := s.ok("pveam", "list", "local"); !strings.Contains(out, want+strings.Repeat(" ", 60-len(want))+" 123.45MB\n") {
		t.Fatalf("list:\n%q", out)
	}
	s.fails("400 Parameter verification failed.\ntemplate: no such template\npveam download <storage> <template>", "pveam", "download", "local", "nope.tar.zst")
	s.fails("storage 'local-lvm' does not support templates", "pveam", "download", "local-lvm", debian)
	s.fails("Storage does not support templates!", "pveam", "list", "local-lvm")
}

func TestPctLifecycle(t *testing.T) {
	s := newSim(t)
	if out := s.ok("pct", "list"); out != "" {
		t.Fatalf("list with no containers printed %q", out)
	}
	s.withTemplate()
	out := s.ok("pct", "create", "105", "local:vztmpl/"+debian, "-hostname", "web1", "--memory", "1024", "--cores", "2",
		"--net0", "name=eth0,bridge=vmbr0,ip=dhcp", "--rootfs", "local-lvm:8", "--features", "nesting=1,keyctl=1", "--unprivileged", "--password", "secret")
	if !strings.Contains(out, "extracting archive '/var/lib/vz/template/cache/"+debian+"'") {
		t.Fatalf("create output:\n%s", out)
	}
	wantConfig := `arch: amd64
cores: 2
features: nesting=1,keyctl=1
hostname: web1
memory: 1024
net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:69,ip=dhcp,type=veth
ostype: debian
rootfs: local-lvm:vm-105-disk-0,size=8G
swap: 512
unprivileged: 1
`
	if got := s.ok("pct", "config", "105"); got != wantConfig {
		t.Fatalf("config:\n%s\nwant:\n%s", got, wantConfig)
	}
	if got := s.ok("pct", "status", "105"); got != "status: stopped\n" {
		t.Fatalf("status: %q", got)
	}
	s.ok("pct", "start", "105")
	want := "VMID       Status     Lock         Name                \n105        running                 web1                \n"
	if got := s.ok("pct", "list"); got != want {
		t.Fatalf("list:\n%q\nwant\n%q", got, want)
	}
	s.fails("CT 105 already running", "pct", "start", "105")
	s.fails("unable to destroy CT 105 - container is running", "pct", "destroy", "105")
	s.ok("pct", "shutdown", "105")
	s.fails("CT 105 not running", "pct", "stop", "105")
	s.ok("pct", "start", "105")
	s.ok("pct", "destroy", "105", "--force")
	s.fails("Configuration file 'nodes/pve/lxc/105.conf' does not exist", "pct", "status", "105")
	// Every worker left a task log ending in TASK OK.
	logs, _ := filepath.Glob(filepath.Join(s.dir, "tasks", "UPID:pve:*"))
	// download, create, start, shutdown, start, destroy
	if len(logs) != 6 {
		t.Fatalf("%d task logs", len(logs))
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if !strings.HasSuffix(string(b), "TASK OK\n") {
			t.Fatalf("%s: %q", filepath.Base(l), b)
		}
	}
}

func TestPctErrors(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	tmpl := "local:vztmpl/" + debian
	s.ok("pct", "create", "100", tmpl, "--rootfs", "local-lvm:4")
	usage := "pct create <vmid> <ostemplate> [OPTIONS]"
	s.fails("CT 100 already exists on node 'pve'", "pct", "create", "100", tmpl, "--rootfs", "local-lvm:4")
	s.fails("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID\n"+usage, "pct", "create", "99", tmpl)
	s.fails("400 Parameter verification failed.\nhostname: invalid format - value does not look like a valid DNS name\nmemory: value must have a minimum value of 16\n"+usage,
		"pct", "create", "101", tmpl, "--hostname", "bad_name", "--memory", "8")
	s.fails("400 Parameter verification failed.\nstorage: storage 'local' does not support container directories\n"+usage, "pct", "create", "101", tmpl)
	s.fails("volume 'local:vztmpl/none.tar.zst' does not exist", "pct", "create", "101", "local:vztmpl/none.tar.zst", "--rootfs", "local-lvm:4")
	s.fails("400 not enough arguments\n"+usage, "pct", "create", "101")
	s.fails("400 too many arguments\npct start <vmid> [OPTIONS]", "pct", "start", "100", "extra")
	s.fails("Unknown option: bogus\n400 unable to parse option\npct start <vmid> [OPTIONS]", "pct", "start", "100", "--bogus")
	s.fails("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID\npct status <vmid> [OPTIONS]", "pct", "status", "99")
	s.fails("Configuration file 'nodes/pve/lxc/404.conf' does not exist", "pct", "start", "404")
	s.fails("CT 100 not running", "pct", "shutdown", "100")
	// Locks and protection.
	if err := (&Store{Dir: s.dir, Node: "pve", LockTimeout: 1e9}).Update(func(n *Node) error {
		n.CTs[100].Lock = "backup"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.fails("CT is locked (backup)", "pct", "start", "100")
	s.fails("CT is locked (backup)", "pct", "destroy", "100")
	(&Store{Dir: s.dir, Node: "pve", LockTimeout: 1e9}).Update(func(n *Node) error {
		n.CTs[100].Lock = ""
		n.CTs[100].Config["protection"] = "1"
		n.VMs = append(n.VMs, 200)
		return nil
	})
	s.fails("can't remove CT 100 - protection mode enabled", "pct", "destroy", "100")
	s.fails("VM 200 already exists on node 'pve'", "pct", "create", "200", tmpl, "--rootfs", "local-lvm:4")
	// The failed start left a task log ending in TASK ERROR.
	logs, _ := filepath.Glob(filepath.Join(s.dir, "tasks", "UPID:pve:*:vzstart:404:*"))
	if len(logs) != 1 {
		t.Fatalf("%d vzstart logs for 404", len(logs))
	}
	if b, _ := os.ReadFile(logs[0]); !strings.HasSuffix(string(b), "TASK ERROR: Configuration file 'nodes/pve/lxc/404.conf' does not exist\n") {
		t.Fatalf("task log: %q", b)
	}
}

func TestBareBooleansAndStartOnCreate(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	s.ok("pct", "create", "110", "local:vztmpl/"+debian, "--rootfs", "local-lvm:2", "--start", "--onboot", "yes", "--unprivileged", "0")
	if got := s.ok("pct", "status", "110"); got != "status: running\n" {
		t.Fatalf("--start: %q", got)
	}
	cfg := s.ok("pct", "config", "110")
	if !strings.Contains(cfg, "onboot: 1\n") || !strings.Contains(cfg, "unprivileged: 0\n") {
		t.Fatalf("booleans:\n%s", cfg)
	}
}

// TestBinaryAsPct runs the built binary through a symlink named pct, as
// the agent's real adapter will.
func TestBinaryAsPct(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pvesim")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/pvesim").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "pct")); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	env := append(os.Environ(), "PVESIM_DIR="+state, "PVESIM_NODE=node7")
	init := exec.Command(bin, "init")
	init.Env = env
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "pct"), "status", "123")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 {
		t.Fatalf("exit: %v", err)
	}
	if stderr.String() != "Configuration file 'nodes/node7/lxc/123.conf' does not exist\n" {
		t.Fatalf("stderr %q", stderr.String())
	}
}

func TestPctSet(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	s.ok("pct", "create", "130", "local:vztmpl/"+debian, "--rootfs", "local-lvm:4", "--tags", "a;b")
	s.fails("no options specified", "pct", "set", "130")
	s.fails("400 Parameter verification failed.\nmemory: value must have a minimum value of 16\npct set <vmid> [OPTIONS]", "pct", "set", "130", "--memory", "4")
	s.fails("Configuration file 'nodes/pve/lxc/131.conf' does not exist", "pct", "set", "131", "--memory", "64")
	if code, out, _ := s.run("pct", "set", "130", "-hostname", "renamed", "--onboot", "--delete", "tags"); code != 0 || out != "" {
		t.Fatalf("set: %d %q", code, out)
	}
	cfg := s.ok("pct", "config", "130")
	if !strings.Contains(cfg, "hostname: renamed\n") || !strings.Contains(cfg, "onboot: 1\n") || strings.Contains(cfg, "tags:") {
		t.Fatalf("config after set:\n%s", cfg)
	}
}
