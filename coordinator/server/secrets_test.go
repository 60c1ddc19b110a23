package server

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAuditFindings07And08SecretsNeverReachTheCoordinator deploys an app
// with generated secrets and greps the coordinator's whole data directory
// (Raft log, bolt store, snapshots) and the captured logs for them: the
// agent makes them on the node and writes them only into the container.
func TestAuditFindings07And08SecretsNeverReachTheCoordinator(t *testing.T) {
	buf := &lockedBuffer{}
	captured = buf
	defer func() { captured = nil }()
	tc, ag, tok := appCluster(t)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	c := ct(t, ag.sim.Store, a.VMID)
	env := c.Files["/opt/proximity/app/.env"]
	var secret string
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "ADMIN_TOKEN="); ok {
			secret = v
		}
	}
	if len(secret) != 48 {
		t.Fatalf("no generated ADMIN_TOKEN in the container's .env: %q", env)
	}
	err := filepath.WalkDir(tc.nodes[0].cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret is in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := buf.String()
	if !strings.Contains(logs, "task done") {
		t.Fatal("the logs were not captured")
	}
	if strings.Contains(logs, secret) {
		t.Error("the secret is in the coordinator's or agent's log")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
