package api

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// sseWriteTimeout bounds each write of a stream: the server's own write
// timeout is for whole answers, a stream outlives it.
const sseWriteTimeout = 30 * time.Second

// sseWriter writes Server-Sent Events (text/event-stream) to one answer.
// It is not safe for concurrent use.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startSSE sends the stream's headers at once, before any event.
func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer it
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	w.WriteHeader(http.StatusOK)
	return s
}

// Comment writes a comment line (": text"): clients ignore it, proxies
// and load balancers see the connection is alive.
func (s *sseWriter) Comment(text string) error {
	return s.write([]byte(": " + oneLine(text) + "\n\n"))
}

// Event writes one event. data may hold newlines; each line becomes a
// data: field.
func (s *sseWriter) Event(id, event string, data []byte) error {
	var b bytes.Buffer
	if id != "" {
		b.WriteString("id: " + oneLine(id) + "\n")
	}
	if event != "" {
		b.WriteString("event: " + oneLine(event) + "\n")
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return s.write(b.Bytes())
}

func (s *sseWriter) write(p []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

// oneLine keeps a field on one line: a newline would end it early.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
