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

// TestDevShowsThreeReadyNodes runs `proximity-coordinator dev` as `make
// run` does and checks GET /api/v1/nodes; a restart on the same data
// directory brings the same nodes back with their saved certificates.
func TestDevShowsThreeReadyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real process")
	}
	bin := filepath.Join(t.TempDir(), "proximity-coordinator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.%d.%d.%d:7070", 10+rand.IntN(200), rand.IntN(250), 2+rand.IntN(250))
	dir := t.TempDir()
	var firstAdmin string
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(bin, "dev", "--http-addr", addr, "--data-dir", dir)
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
