package pvesim

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVzdumpAndRestoreCLI(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	s.ok("pct", "create", "100", "local:vztmpl/"+debian, "--rootfs", "local-lvm:8", "--hostname", "pihole")
	code, _, errs := s.run("vzdump", "100", "--compress", "zstd", "--storage", "local")
	if code != 0 || !strings.Contains(errs, "INFO: backup mode: stop\n") ||
		!strings.Contains(errs, "INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-lxc-100-") ||
		!strings.HasSuffix(errs, "INFO: Backup job finished successfully\n") {
		t.Fatalf("vzdump: %d\n%s", code, errs)
	}
	code, _, errs = s.run("vzdump", "101")
	if code != 255 || !strings.Contains(errs, "ERROR: Backup of VM 101 failed - Configuration file 'nodes/pve/lxc/101.conf' does not exist\n") {
		t.Fatalf("vzdump missing: %d\n%s", code, errs)
	}
	s.fails("volume 'local:backup/x.tar.zst' does not exist", "pct", "restore", "100", "local:backup/x.tar.zst", "--storage", "local-lvm")
}

func TestAPIErrorsAndAuth(t *testing.T) {
	s := newSim(t)
	st, _ := Open(s.dir, "pve")
	srv, err := Serve(st, "127.0.0.1:0", "root@pam!t=secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path, auth string) (string, map[string]any) {
		req, _ := http.NewRequest("GET", srv.URL()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return res.Status, body
	}
	const auth = "PVEAPIToken=root@pam!t=secret"
	if status, _ := get("/version", "PVEAPIToken=root@pam!t=wrong"); status != "401 No ticket" {
		t.Fatalf("wrong token: %s", status)
	}
	status, body := get("/nodes/pve/lxc/100/status/current", auth)
	if status != "500 Configuration file 'nodes/pve/lxc/100.conf' does not exist" || body["message"] != "Configuration file 'nodes/pve/lxc/100.conf' does not exist\n" {
		t.Fatalf("missing CT: %s %v", status, body)
	}
	status, body = get("/nodes/pve/lxc/99/config", auth)
	if !strings.HasPrefix(status, "400 ") || body["errors"].(map[string]any)["vmid"] != "invalid format - value does not look like a valid VM ID" {
		t.Fatalf("bad vmid: %s %v", status, body)
	}
	if status, body = get("/cluster/nextid", auth); status != "200 OK" || body["data"] != "100" {
		t.Fatalf("nextid: %s %v", status, body)
	}
	if status, _ = get("/nodes/pve/qemu", auth); status != "501 Method 'GET /nodes/pve/qemu' not implemented" {
		t.Fatalf("unimplemented: %s", status)
	}
	// The node's status carries every field the API schema requires.
	status, body = get("/nodes/pve/status", auth)
	data, _ := body["data"].(map[string]any)
	if status != "200 OK" || data == nil {
		t.Fatalf("node status: %s %v", status, body)
	}
	for _, f := range []string{"boot-info", "cpu", "cpuinfo", "current-kernel", "idle", "ksm", "kversion", "loadavg", "memory", "pveversion", "rootfs", "swap", "uptime", "wait"} {
		if _, ok := data[f]; !ok {
			t.Errorf("node status lacks %s", f)
		}
	}
	kernel, _ := data["current-kernel"].(map[string]any)
	for _, f := range []string{"machine", "release", "sysname", "version"} {
		if v, _ := kernel[f].(string); v == "" {
			t.Errorf("current-kernel lacks %s: %v", f, kernel)
		}
	}
	if boot, _ := data["boot-info"].(map[string]any); boot["mode"] != "efi" {
		t.Errorf("boot-info: %v", data["boot-info"])
	}
}

func TestFaultAndTakeCommands(t *testing.T) {
	s := newSim(t)
	s.ok("pvesim", "fault", "latency=10ms", "task-time=5ms", "fail-next=1", "hang=vzdump", "string-vmid=1")
	st, _ := Open(s.dir, "pve")
	var f Faults
	_ = st.View(func(n *Node) error { f = n.Faults; return nil })
	if f.LatencyMS != 10 || f.TaskMS != 5 || f.FailNext != 1 || len(f.Hang) != 1 || !f.StringVMID {
		t.Fatalf("faults: %+v", f)
	}
	if code, _, errs := s.run("pvesim", "fault", "bogus=1"); code != 1 || !strings.Contains(errs, "unknown fault") {
		t.Fatalf("bad fault: %d %s", code, errs)
	}
	s.ok("pvesim", "fault", "clear")
	s.ok("pvesim", "take", "150", "--vm")
	s.ok("pvesim", "take", "151")
	s.withTemplate()
	s.fails("VM 150 already exists on node 'pve'", "pct", "create", "150", "local:vztmpl/"+debian, "--rootfs", "local-lvm:4")
	if out := s.ok("pct", "list"); !strings.Contains(out, "151        stopped                 manual-151") {
		t.Fatalf("list after take:\n%s", out)
	}
}

func TestDeployFlowCommandsInsideAContainer(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	s.ok("pct", "create", "100", "local:vztmpl/"+debian, "--rootfs", "local-lvm:4", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp", "--start", "1")
	compose := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(compose, []byte("services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ok("pct", "push", "100", compose, "/opt/proximity/app/compose.yaml")
	curl := []string{"exec", "100", "--", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/"}
	if code, _, errs := s.run("pct", curl...); code != 7 || !strings.Contains(errs, "Failed to connect") {
		t.Fatalf("curl before up: %d %s", code, errs)
	}
	up := []string{"exec", "100", "--", "docker", "compose", "--project-directory", "/opt/proximity/app", "up", "-d"}
	if code, _, errs := s.run("pct", up...); code != 127 || !strings.Contains(errs, "docker: not found") {
		t.Fatalf("docker before install: %d %s", code, errs)
	}
	s.ok("pct", "exec", "100", "--", "sh", "-c", "apt-get update && apt-get install -y docker.io docker-compose")
	s.ok("pct", up...)
	s.ok("pct", curl...)
	if code, _, _ := s.run("pct", "exec", "100", "--", "curl", "-fsS", "http://127.0.0.1:9999/"); code != 7 {
		t.Fatal("curl of an unpublished port succeeded")
	}
}
