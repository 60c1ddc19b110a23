package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAuditCommandLine(t *testing.T) {
	ts, token := startServer(t)
	if code, _, errs := ctl(t, ts, token, "reservations", "create", "audited", "--node", "pve1"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	// Records are written in batches after the answer.
	var out struct {
		Items []auditRecord `json:"items"`
		Total int           `json:"total"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, stdout, errs := ctl(t, ts, token, "audit", "--actor", "admin", "-o", "json")
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("audit: %d %s %s", code, stdout, errs)
		}
		if out.Total > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out.Total != 1 || out.Items[0].Route != "POST /api/v1/reservations" || out.Items[0].Status != 201 || out.Items[0].Actor.Name != "admin" {
		t.Fatalf("audit --actor admin: %+v", out)
	}
	code, stdout, _ := ctl(t, ts, token, "audit", "--target", out.Items[0].Targets[0])
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME ") ||
		!strings.Contains(lines[1], "POST /api/v1/reservations") || strings.Contains(stdout, token) {
		t.Fatalf("audit table: %d\n%s", code, stdout)
	}
	if code, _, errs := ctl(t, ts, token, "audit", "--since", "yesterday"); code != 1 || !strings.Contains(errs, "since") {
		t.Fatalf("audit --since yesterday: %d %s", code, errs)
	}
	if code, stdout, errs := ctl(t, ts, token, "audit", "retention", "--max-records", "500"); code != 0 || !strings.Contains(stdout, "500") || !strings.Contains(stdout, "2160h0m0s") {
		t.Fatalf("retention: %d %s %s", code, stdout, errs)
	}
	if code, _, errs := ctl(t, ts, token, "audit", "retention", "--max-age", "1m"); code != 1 || !strings.Contains(errs, "max_age") {
		t.Fatalf("retention --max-age 1m: %d %s", code, errs)
	}
}
