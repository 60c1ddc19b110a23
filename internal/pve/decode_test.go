package pve

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAuditFinding22NullMetrics: counters that are null, missing or
// strings decode to zero or their value instead of failing, so usage
// arithmetic never meets a nil.
func TestAuditFinding22NullMetrics(t *testing.T) {
	for _, body := range []string{
		`{"vmid":100,"status":"running","cpus":null,"cpu":null,"mem":null,"maxmem":null}`,
		`{"vmid":"100","status":"running"}`,
		`{"vmid":100,"status":"running","cpus":"2","cpu":"0.5","mem":"1024","maxmem":2048}`,
	} {
		var v vmstatus
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		c := v.container()
		if c.VMID != 100 || c.Status != "running" {
			t.Fatalf("%s: %+v", body, c)
		}
	}
	var v vmstatus
	_ = json.Unmarshal([]byte(`{"vmid":100,"cpus":"2","cpu":"0.5","mem":"1024","maxmem":2048}`), &v)
	if c := v.container(); c.CPUs != 2 || c.CPU != 0.5 || c.Mem != 1024 || c.MaxMem != 2048 {
		t.Fatalf("string counters: %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"vmid":{"x":1}}`), &v); err == nil {
		t.Fatal("an object as vmid decoded")
	}
}

// TestAuditFinding30UnexpectedAPIShapes: an API answer of the wrong shape
// is an error (never a panic), and a null list is an empty list.
func TestAuditFinding30UnexpectedAPIShapes(t *testing.T) {
	answers := map[string]string{
		"/api2/json/nodes/pve/lxc":                    `{"data":null}`,
		"/api2/json/cluster/resources":                `{"data":{"not":"a list"}}`,
		"/api2/json/nodes/pve/lxc/100/config":         `{"data":["not","an","object"]}`,
		"/api2/json/nodes/pve/lxc/100/snapshot":       `{"data":"text"}`,
		"/api2/json/nodes/pve/lxc/101/status/current": `{"data":{"vmid":null,"status":"stopped"}}`,
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answers[r.URL.Path]))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := NewLocal(Options{Node: "pve", APIURL: srv.URL + "/api2/json", TokenID: "a@pve!b", Secret: "c", CAFile: ca, APITimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if cts, err := rt.Containers(ctx); err != nil || len(cts) != 0 {
		t.Fatalf("null list: %v %v", cts, err)
	}
	if _, err := rt.UsedVMIDs(ctx); err == nil {
		t.Fatal("an object where a list belongs was accepted")
	}
	if _, err := rt.Config(ctx, 100); err == nil {
		t.Fatal("a list where an object belongs was accepted")
	}
	if _, err := rt.Snapshots(ctx, 100); err == nil {
		t.Fatal("text where a list belongs was accepted")
	}
	if st, err := rt.Status(ctx, 101); err != nil || st.VMID != 101 || st.Status != "stopped" {
		t.Fatalf("status with a null vmid: %+v %v", st, err)
	}
}
