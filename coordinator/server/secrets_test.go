package server

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/proximity-ve/proximity/internal/dotenv"
)

// TestAuditFindings07And08SecretsNeverReachTheCoordinator deploys an app
// with generated secrets and greps the coordinator's whole data directory
// (Raft log, bolt store, snapshots) and the captured logs for them: the
// agent makes them on the node and writes them only into the container.
func TestAuditFindings07And08SecretsNeverReachTheCoordinator(t *testing.T) {
	buf := &lockedBuffer{}
	tc, ag, tok := appCluster(t, logsTo(buf))
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	c := ct(t, ag.sim.Store, a.VMID)
	env := c.Files["/opt/proximity/app/.env"]
	vals, err := dotenv.Parse([]byte(env))
	if err != nil {
		t.Fatal(err)
	}
	secret := vals["ADMIN_TOKEN"]
	if len(secret) != 48 {
		t.Fatalf("no generated ADMIN_TOKEN in the container's .env: %q", env)
	}
	if files := tc.scanDataDirs("the generated secret", map[string][]byte{"raw": []byte(secret)}); files == 0 {
		t.Fatal("no file scanned")
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
