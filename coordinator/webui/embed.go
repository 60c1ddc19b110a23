package webui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// dist is Vite's output. It holds a .gitkeep when the front end was not
// built, and then Handler serves notBuilt.
//
//go:embed all:dist
var dist embed.FS

// CSP is the Content-Security-Policy of every page: only this origin's
// scripts, styles, images and connections, no plugins, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

const notBuilt = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Proximity</title></head>` +
	`<body><h1>Proximity</h1><p>This binary was built without the web dashboard. Run <code>make build</code> ` +
	`(it needs Node.js 20.19 or later and npm) to build it in.</p></body></html>`

// Handler serves the dashboard.
func Handler() *Dashboard { return newHandler(dist) }

// Dashboard is the dashboard's handler: its files and its page.
type Dashboard struct {
	files fs.FS
	index []byte
	// gz holds the gzip form of each compressible file, made on first use.
	gz sync.Map // name -> []byte
}

func newHandler(embedded fs.FS) *Dashboard {
	files, err := fs.Sub(embedded, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist
	}
	h := &Dashboard{files: files, index: []byte(notBuilt)}
	if b, err := fs.ReadFile(files, "index.html"); err == nil {
		h.index = b
	}
	return h
}

// SecurityHeaders sets the headers every page of the dashboard carries.
func SecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	hd.Set("Strict-Transport-Security", "max-age=31536000")
}

// Serves reports whether the dashboard answers path with a file or its
// page: a file of the build, or a path whose last segment names no file
// (the application's own routes, /apps/app_…, never have a dot there).
// /favicon.ico, a missing asset or /wp-login.php is not the dashboard's.
func (h *Dashboard) Serves(p string) bool {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" || name == "index.html" {
		return true
	}
	if strings.HasPrefix(name, ".") || strings.Contains(name, "/.") {
		return false
	}
	if _, err := fs.Stat(h.files, name); err == nil {
		return true
	}
	return !strings.HasPrefix(name, "assets/") && !strings.Contains(path.Base(name), ".")
}

func (h *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if !h.Serves(r.URL.Path) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if name != "" && name != "index.html" {
		if b, err := fs.ReadFile(h.files, name); err == nil {
			if strings.HasPrefix(name, "assets/") {
				// Vite names every asset by the hash of its content.
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			h.write(w, r, name, b)
			return
		}
	}
	// Every other path is one of the application's routes.
	w.Header().Set("Cache-Control", "no-cache")
	h.write(w, r, "index.html", h.index)
}

// write answers a file with its type, gzip when the client takes it.
func (h *Dashboard) write(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Add("Vary", "Accept-Encoding")
	if compressible(ct) && len(b) > 512 && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		b = h.gzipped(name, b)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (h *Dashboard) gzipped(name string, b []byte) []byte {
	if z, ok := h.gz.Load(name); ok {
		return z.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	z, _ := h.gz.LoadOrStore(name, buf.Bytes())
	return z.([]byte)
}

func compressible(ct string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml", "application/manifest+json"} {
		if strings.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
