package pvesim

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
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
