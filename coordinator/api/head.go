package api

import (
	"context"
	"net/http"
)

// headOnly prepares a HEAD request, which runs its GET route: once the
// headers are written the request's context ends, so a handler that would
// go on (a stream of events or of logs) returns at once instead of holding
// the connection with a body nobody will read.
func headOnly(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	return &headWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx)
}

type headWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (h *headWriter) WriteHeader(code int) {
	h.ResponseWriter.WriteHeader(code)
	if code >= 200 {
		h.cancel()
	}
}

func (h *headWriter) Write(b []byte) (int, error) {
	n, err := h.ResponseWriter.Write(b)
	h.cancel()
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (h *headWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
