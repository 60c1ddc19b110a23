package api

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/proximity-ve/proximity/internal/problem"
)

// recoverPanic is deferred by the dispatcher once a request has its ID: a
// handler's panic becomes a 500 problem document carrying that ID, and the
// panic value and stack go to the log at error level under the same ID.
// The server keeps serving. A panic after the answer's headers went out (a
// stream, a half-written body) can no longer change the status: the
// response is aborted, which closes the connection.
func (a *API) recoverPanic(w *statusWriter, rq *request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.logPanic(rq.id, rq.r, v)
	if w.status != 0 {
		panic(http.ErrAbortHandler)
	}
	problem.Write(w, problem.E(problem.Internal, "handler panic"), rq.id)
}

// recoverOutside is the same net for what runs before the dispatcher (the
// method check, /metrics, the audit ingest): the request ID is the one the
// dispatcher already set on the answer, or a new one.
func (a *API) recoverOutside(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	id := w.Header().Get(hdrRequestID)
	if id == "" {
		id = NewID("req_")
		w.Header().Set(hdrRequestID, id)
	}
	a.logPanic(id, r, v)
	problem.Write(w, problem.E(problem.Internal, "handler panic"), id)
}

func (a *API) logPanic(id string, r *http.Request, v any) {
	a.log.Error("handler panic", "request_id", id, "method", r.Method, "path", r.URL.Path,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}
