package server

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

type metricsOut struct {
	Status     *string    `json:"status"`
	ReportedAt *time.Time `json:"reported_at"`
	History    []struct {
		At     time.Time `json:"at"`
		Status string    `json:"status"`
		CPU    float64   `json:"cpu"`
		Mem    uint64    `json:"mem"`
		MaxMem uint64    `json:"max_mem"`
		NetIn  uint64    `json:"net_in"`
		NetOut uint64    `json:"net_out"`
	} `json:"history"`
}

// TestAppMetricsHistory: the leader keeps a sample of the app's container
// per inventory (at each report: every 250 ms here); range asks for them,
// oldest first, and filters them by age; without range the answer has no
// history; a bad range is 400; a stop shows in the newest samples.
func TestAppMetricsHistory(t *testing.T) {
	tc := newTestClusterWith(t, 1, appPolicy(fastRetries), withServers(func(cfg *Config) { cfg.Heartbeat = 250 * time.Millisecond }))
	tc.startAgent("pve1", tc.joinToken(nil), filepath.Join(tc.dir, "pve1"), tc.grpcAddrs())
	waitFor(t, "node ready", 15*time.Second, func() bool { return tc.nodes_()["pve1"].Status == "ready" })
	tok := appUsers(t, tc)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "hist"}, nil, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("deploy: %d %v", code, err)
	}
	a = tc.waitApp(tok["alice"], a.ID, "running")
	metrics := func(q string) (int, metricsOut, map[string]any) {
		t.Helper()
		var m metricsOut
		var raw json.RawMessage
		code, err := tc.call(tc.waitLeader(), "GET", "/api/v1/apps/"+a.ID+"/metrics"+q, tok["alice"], nil, nil, &raw)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK {
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
		}
		return code, m, doc
	}
	// The container was made stopped and then started: the samples
	// since it runs have its use.
	var first metricsOut
	waitFor(t, "three samples of it running", 10*time.Second, func() bool {
		_, first, _ = metrics("?range=1h")
		n := len(first.History)
		return n >= 3 && first.History[n-3].Status == "running"
	})
	for i, s := range first.History {
		if i > 0 && !s.At.After(first.History[i-1].At) {
			t.Fatalf("history out of order at %d: %+v", i, first.History)
		}
		if s.MaxMem == 0 || s.Status == "running" && (s.Mem == 0 || s.CPU <= 0) {
			t.Fatalf("sample %d: %+v", i, s)
		}
	}
	// It grows with every report, the older samples unchanged.
	var later metricsOut
	waitFor(t, "more samples", 10*time.Second, func() bool {
		_, later, _ = metrics("?range=1h")
		return len(later.History) >= len(first.History)+5
	})
	for i := range first.History {
		if later.History[i] != first.History[i] {
			t.Fatalf("sample %d changed: %+v, then %+v", i, first.History[i], later.History[i])
		}
	}
	if n := len(later.History); later.History[n-1].NetIn <= later.History[0].NetIn {
		t.Fatalf("net_in counter fell: %+v", later.History)
	}
	// range filters by age: the last second holds fewer samples, all of
	// them recent.
	_, short, _ := metrics("?range=1s")
	now := time.Now()
	if len(short.History) == 0 || len(short.History) >= len(later.History) {
		t.Fatalf("range=1s: %d samples of %d", len(short.History), len(later.History))
	}
	for _, s := range short.History {
		if now.Sub(s.At) > 1500*time.Millisecond {
			t.Fatalf("range=1s answered a sample of %v ago", now.Sub(s.At))
		}
	}
	// Without range the answer is what it was: no history.
	if code, _, raw := metrics(""); code != http.StatusOK || raw["status"] != "running" {
		t.Fatalf("without range: %d %v", code, raw)
	} else if _, ok := raw["history"]; ok {
		t.Fatalf("history without range: %v", raw)
	}
	for _, bad := range []string{"2h", "abc", "0s", "-5m", "61m"} {
		if code, _, raw := metrics("?range=" + bad); code != http.StatusBadRequest || raw["type"] == nil {
			t.Fatalf("range=%s: %d %v", bad, code, raw)
		}
	}
	// A stop shows in the samples that follow.
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/actions", tok["alice"], map[string]string{"action": "stop"}, nil, nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("stop: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "stopped")
	waitFor(t, "a stopped sample", 10*time.Second, func() bool {
		_, m, _ := metrics("?range=5m")
		n := len(m.History)
		return n > 1 && m.History[n-1].Status == "stopped" && m.History[n-1].Mem == 0
	})
	// Bob sees none of it.
	if code, _ := tc.call(0, "GET", "/api/v1/apps/"+a.ID+"/metrics?range=1h", tok["bob"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob: %d", code)
	}
}
