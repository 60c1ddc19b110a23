package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/proximity-ve/proximity/internal/problem"
)

// lockedBuffer is a log sink that handlers may write to concurrently.
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

// withTestRoutes serves a's table plus extra routes that exist only in the
// test.
func withTestRoutes(a *API, extra ...*route) {
	a.routes = append(a.routes, extra...)
	a.mux = http.NewServeMux()
	a.register()
}

// TestHandlerPanicBecomes500WithRequestID: a handler that panics answers a
// 500 problem document whose request_id is the request's, without the
// panic's text; the log has the panic and its stack at error level under
// that ID; the server answers the next request.
func TestHandlerPanicBecomes500WithRequestID(t *testing.T) {
	logs := &lockedBuffer{}
	a := New(Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer a.Close()
	withTestRoutes(a,
		&route{method: "GET", pattern: "/test/panic", access: public, where: local, h: func(*request) (int, any, error) {
			var items []string
			n := len("secret-value") // an index out of range: a runtime panic, as a real bug would be
			return http.StatusOK, items[n], nil
		}},
		&route{method: "GET", pattern: "/test/ok", access: public, where: local, h: func(*request) (int, any, error) {
			return http.StatusOK, map[string]string{"ok": "yes"}, nil
		}},
	)
	srv := httptest.NewServer(a)
	defer srv.Close()

	for i := range 2 { // twice: the first panic did not break the server
		resp, err := http.Get(srv.URL + "/test/panic")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != problem.ContentType {
			t.Fatalf("status %d, content type %q; want 500 %s", resp.StatusCode, resp.Header.Get("Content-Type"), problem.ContentType)
		}
		var p problem.Body
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		id := resp.Header.Get(hdrRequestID)
		if p.RequestID == "" || p.RequestID != id {
			t.Fatalf("request_id %q, header %q: want the same, non-empty", p.RequestID, id)
		}
		if strings.Contains(string(body), "index out of range") || strings.Contains(string(body), "secret-value") {
			t.Fatalf("the answer carries the panic's text: %s", body)
		}
		var found bool
		for _, line := range strings.Split(logs.String(), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["request_id"] == id && rec["msg"] == "handler panic" {
				found = rec["level"] == "ERROR" && strings.Contains(rec["panic"].(string), "index out of range") &&
					strings.Contains(rec["stack"].(string), "recover_test.go")
			}
		}
		if !found {
			t.Fatalf("no error-level log line with the panic and its stack for %s:\n%s", id, logs.String())
		}
	}
	// The dispatcher's metrics count the answer the client got.
	var m dto.Metric
	if err := a.m.requests.WithLabelValues("GET /test/panic", "GET", "500").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 2 {
		t.Errorf("proximity_http_requests_total for the panics with code 500 = %v, want 2", n)
	}
	resp, err := http.Get(srv.URL + "/test/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the panics: status %d, want 200", resp.StatusCode)
	}
}
