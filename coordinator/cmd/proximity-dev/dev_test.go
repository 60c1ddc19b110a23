package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevShowsThreeReadyNodes runs `proximity-dev` as `make
// run` does and checks GET /api/v1/nodes; a restart on the same data
// directory brings the same nodes back with their saved certificates.
func TestDevShowsThreeReadyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real process")
	}
	bin := buildDev(t)
	addr := fmt.Sprintf("127.%d.%d.%d:7070", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	dir := t.TempDir()
	var firstAdmin string
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(bin, "--http-addr", addr, "--data-dir", dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		token, caFile, exports, admin := "", "", "", ""
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "CA:"); ok {
				caFile = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Admin:"); ok {
				admin = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Admin token:"); ok {
				token = strings.TrimSpace(v)
			}
			if strings.HasPrefix(line, "export ") {
				exports = line
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		if token == "" || caFile == "" {
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: dev printed no admin token or CA", round)
		}
		want := "export PROXIMITY_ADDR=https://" + addr + " PROXIMITY_CACERT=" + caFile + " PROXIMITY_TOKEN=" + token
		if exports != want {
			t.Errorf("round %d: dev printed %q, want %q", round, exports, want)
		}
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			t.Fatalf("%s holds no certificate", caFile)
		}
		// The admin's name and password sign in; a restart prints the same.
		name, password, ok := strings.Cut(admin, " / ")
		if !ok || name != "admin" || len(password) < 12 {
			t.Fatalf("round %d: admin line %q", round, admin)
		}
		if round == 1 {
			firstAdmin = admin
		} else if admin != firstAdmin {
			t.Fatalf("round 2 printed %q, round 1 %q", admin, firstAdmin)
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		lres, err := client.Post("https://"+addr+"/api/v1/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"name":%q,"password":%q}`, name, password)))
		if err != nil || lres.StatusCode != 200 {
			t.Fatalf("round %d: login with the printed password: %v %v", round, lres, err)
		}
		lres.Body.Close()
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Items []struct{ Name, Status string }
			Total int
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil || body.Total != 3 {
			t.Fatalf("round %d: nodes %+v %v", round, body, err)
		}
		for i, n := range body.Items {
			if n.Name != fmt.Sprintf("pve%d", i+1) || n.Status != "ready" {
				t.Fatalf("round %d: node %d is %+v", round, i, n)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: dev exited with %v after SIGINT", round, err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: dev did not stop on SIGINT", round)
		}
	}
}

func buildDev(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "proximity-dev")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestDevRemovesItsTemporaryDataDir: `make run` without --data-dir leaves
// nothing behind in the temporary directory once it is stopped. It also
// serves the catalog of --catalog-dir instead of the starter catalog.
func TestDevRemovesItsTemporaryDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real process")
	}
	bin := buildDev(t)
	tmp, catalogDir := t.TempDir(), t.TempDir()
	entry, err := os.ReadFile("../../../internal/catalog/starter/vaultwarden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(catalogDir, "vaultwarden.yaml"), entry, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.%d.%d.%d:7070", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	cmd := exec.Command(bin, "--http-addr", addr, "--nodes", "1", "--catalog-dir", catalogDir)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	dataDir, token, caFile := "", "", ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Admin token:"); ok {
			token = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "CA:"); ok {
			caFile = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Data dir:"); ok {
			dataDir = strings.TrimSpace(v)
			break
		}
	}
	if !strings.HasPrefix(dataDir, tmp+"/proximity-dev-") {
		t.Fatalf("dev printed data dir %q, want one under %s", dataDir, tmp)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "ca.pem")); err != nil {
		t.Fatalf("the running server's data dir: %v", err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/catalog", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Items []struct{ ID string }
		Total int
	}
	err = json.NewDecoder(res.Body).Decode(&cat)
	res.Body.Close()
	if err != nil || cat.Total != 1 || cat.Items[0].ID != "vaultwarden" {
		t.Fatalf("the catalog of --catalog-dir: %+v %v", cat, err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v after SIGINT", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop on SIGINT")
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after dev stopped (%v)", dataDir, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("dev left %d entries in TMPDIR: %v", len(left), left[0].Name())
	}
}
