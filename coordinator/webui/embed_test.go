package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func testHandler() *Dashboard {
	return newHandler(fstest.MapFS{
		"dist/index.html":             {Data: []byte(`<!doctype html><script type="module" src="/assets/index-abc123.js"></script>`)},
		"dist/assets/index-abc123.js": {Data: bytes.Repeat([]byte("console.log('proximity');\n"), 100)},
		"dist/favicon.svg":            {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"dist/.gitkeep":               {Data: nil},
	})
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Every path that is not a file is the application's page (history
// fallback), never cached, and carries the security headers.
func TestRoutesOfTheApplicationServeThePage(t *testing.T) {
	h := testHandler()
	for _, p := range []string{"/", "/catalog", "/apps/app_123/logs", "/admin/users?page=2", "/index.html", "/assets/../catalog"} {
		w := get(t, h, "GET", p)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "/assets/index-abc123.js") {
			t.Errorf("GET %s: %d %q, want the page", p, w.Code, w.Body.String())
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", p, got)
		}
		if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
			t.Errorf("GET %s: Content-Type %q", p, got)
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline or eval", p, csp)
		}
		for _, hd := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Strict-Transport-Security"} {
			if w.Header().Get(hd) == "" {
				t.Errorf("GET %s: no %s", p, hd)
			}
		}
	}
}

// Hashed assets are cached for a year; a missing one is a 404, never the
// page (a stale page must not run HTML as a script).
func TestAssetsAreImmutableAndMissingOnesAre404(t *testing.T) {
	h := testHandler()
	w := get(t, h, "GET", "/assets/index-abc123.js")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("asset: %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
	if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("asset Content-Type %q", ct)
	}
	if w := get(t, h, "GET", "/assets/index-old999.js"); w.Code != 404 || strings.Contains(w.Body.String(), "<!doctype") {
		t.Errorf("missing asset: %d %q, want a 404", w.Code, w.Body.String())
	}
	// A file that is not there is not the page either.
	for _, p := range []string{"/favicon.ico", "/wp-login.php", "/.gitkeep", "/.env", "/apps/.hidden"} {
		if w := get(t, h, "GET", p); w.Code != 404 || h.Serves(p) {
			t.Errorf("%s: %d (serves %v), want a 404", p, w.Code, h.Serves(p))
		}
	}
	if w := get(t, h, "GET", "/favicon.svg"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("favicon: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
}

func TestGzipWhenAccepted(t *testing.T) {
	h := testHandler()
	plain := get(t, h, "GET", "/assets/index-abc123.js")
	w := get(t, h, "GET", "/assets/index-abc123.js", "Accept-Encoding", "br, gzip")
	if w.Header().Get("Content-Encoding") != "gzip" || w.Body.Len() >= plain.Body.Len() {
		t.Fatalf("Content-Encoding %q, %d bytes of %d", w.Header().Get("Content-Encoding"), w.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if !bytes.Equal(b, plain.Body.Bytes()) {
		t.Error("the gzipped asset is not the asset")
	}
	if w := get(t, h, "GET", "/assets/index-abc123.js", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip sent although the client refused it")
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	h := testHandler()
	if w := get(t, h, "HEAD", "/catalog"); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if w := get(t, h, m, "/catalog"); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}
}

// A binary built without the front end says how to build it.
func TestNotBuiltSaysHow(t *testing.T) {
	h := newHandler(fstest.MapFS{"dist/.gitkeep": {}})
	w := get(t, h, "GET", "/apps")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "make build") {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
}
