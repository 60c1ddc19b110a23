package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
)

// The events stream's defaults (Config overrides them).
const (
	defaultEventsHeartbeat   = 15 * time.Second
	defaultMaxStreams        = 256
	defaultMaxStreamsPerUser = 8
	// eventsBatch is how many changes one read of the FSM's ring takes.
	eventsBatch = 256
)

// streamLimits bounds the open streams, in total and per user.
type streamLimits struct {
	mu            sync.Mutex
	total, max    int
	perUser       map[string]int
	maxPerUser    int
	done          chan struct{} // closed when the API closes: streams end
	closeDoneOnce sync.Once
}

func newStreamLimits(max, perUser int) *streamLimits {
	if max <= 0 {
		max = defaultMaxStreams
	}
	if perUser <= 0 {
		perUser = defaultMaxStreamsPerUser
	}
	return &streamLimits{max: max, maxPerUser: perUser, perUser: map[string]int{}, done: make(chan struct{})}
}

// acquire takes a stream slot for user, or answers 429.
func (l *streamLimits) acquire(user string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return nil, problem.E(problem.Unavailable, "the server is shutting down; reconnect to another server")
	default:
	}
	switch {
	case l.perUser[user] >= l.maxPerUser:
		return nil, &errStreams{msg: "too many open streams for this user (at most " + strconv.Itoa(l.maxPerUser) + "); close one first"}
	case l.total >= l.max:
		return nil, &errStreams{msg: "too many open streams on this server (at most " + strconv.Itoa(l.max) + "); retry later"}
	}
	l.total++
	l.perUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.perUser[user]--; l.perUser[user] <= 0 {
				delete(l.perUser, user)
			}
		})
	}, nil
}

// end makes every stream end (shutdown).
func (l *streamLimits) end() { l.closeDoneOnce.Do(func() { close(l.done) }) }

// errStreams is answered 429 with Retry-After, like other throttling.
type errStreams struct{ msg string }

func (e *errStreams) Error() string { return e.msg }

// writeTooManyStreams answers 429 in the one error format.
func writeTooManyStreams(w http.ResponseWriter, rq *request, e *errStreams) bool {
	if e == nil {
		return false
	}
	return writeThrottled(w, rq, &errThrottled{wait: 5 * time.Second, msg: e.msg})
}

// stillValid reports whether the token or session a stream opened with
// is still in force: a stream ends when it is revoked or its user is
// disabled, as any later request would be refused.
func (a *API) stillValid(rq *request) bool {
	ok := false
	now := a.now()
	a.b.FSM().Read(func(s *fsm.State) {
		t, found := s.Tokens[rq.token.ID]
		if !found || t.Hash != rq.token.Hash || (!t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)) {
			return
		}
		u, found := s.Users[t.UserID]
		ok = found && !u.Disabled
	})
	return ok
}

// EndStreams ends every open stream; the HTTP server calls it when it
// shuts down, since a stream never becomes idle by itself.
func (a *API) EndStreams() { a.streams.end() }

// event is one event of the stream, rendered.
type event struct {
	id, name string
	data     []byte
}

// events streams changes of apps, backups and nodes (GET /api/v1/events)
// as Server-Sent Events. It runs on the server that received it and
// reads that server's FSM: events come in log order, and each carries
// the object as this server has it when the event is sent. The FSM keeps
// a bounded ring of recent changes; a Last-Event-ID older than the ring
// (or from before this server restarted) gets an event "reset": the
// client re-reads state, then follows from the reset's id.
func (a *API) events(rq *request) (int, any, error) {
	f := a.b.FSM()
	after, resume := fsm.ChangeID{}, false
	if v := rq.r.Header.Get("Last-Event-ID"); v != "" {
		id, err := fsm.ParseChangeID(v)
		if err != nil {
			return 0, nil, problem.E(problem.Invalid, "Last-Event-ID: %v (an id of this stream's events)", err)
		}
		after, resume = id, true
	}
	onlyApp := rq.r.URL.Query().Get("app")
	if onlyApp != "" {
		if _, err := a.visibleApp(rq, onlyApp); err != nil {
			return 0, nil, err
		}
	}
	release, err := a.streams.acquire(rq.user.ID)
	if err != nil {
		return 0, nil, err
	}
	defer release()
	if !resume {
		after = f.LastChange()
	}
	sse := startSSE(rq.w)
	if err := sse.Comment("proximity events from " + after.String()); err != nil {
		return streamed, nil, nil
	}
	ctx := rq.r.Context()
	tick := time.NewTicker(a.eventsHeartbeat)
	defer tick.Stop()
	for {
		changed := f.Changed()
		changes, last, ok := f.ChangesAfter(after, eventsBatch)
		if !ok {
			data, _ := json.Marshal(map[string]string{"reason": "events after " + after.String() + " are no longer known to this server; re-read the state, then follow from this event"})
			if sse.Event(last.String(), "reset", data) != nil {
				return streamed, nil, nil
			}
			after = last
			continue
		}
		for _, ev := range a.renderChanges(rq, changes, onlyApp) {
			if sse.Event(ev.id, ev.name, ev.data) != nil {
				return streamed, nil, nil
			}
		}
		if len(changes) > 0 {
			after = changes[len(changes)-1].ID
			if len(changes) == eventsBatch {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return streamed, nil, nil
		case <-a.streams.done:
			return streamed, nil, nil
		case <-changed:
		case <-tick.C:
			// The stream lives as long as the token it opened with.
			if !a.stillValid(rq) {
				_ = sse.Event("", "end", []byte(`{"reason":"the token or session of this stream is no longer valid"}`))
				return streamed, nil, nil
			}
			if sse.Comment("heartbeat") != nil {
				return streamed, nil, nil
			}
		}
	}
}

// visibleApp is app id if the caller may see it (the same 404 otherwise).
func (a *API) visibleApp(rq *request, id string) (fsm.App, error) {
	var app fsm.App
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { app, ok = s.App(id) })
	if !ok || (rq.user.Role != fsm.RoleAdmin && app.Owner != rq.user.ID) {
		return fsm.App{}, problem.E(problem.NotFound, "app: %s does not exist", id)
	}
	return app, nil
}

// renderChanges turns changes into the events the caller may see, each
// object rendered as the API shows it now. Of several changes to one
// object in the batch, only the last is sent: it shows the latest state.
func (a *API) renderChanges(rq *request, changes []fsm.Change, onlyApp string) []event {
	admin := rq.user.Role == fsm.RoleAdmin
	type key struct{ kind, key string }
	lastAt := map[key]int{}
	for i, c := range changes {
		lastAt[key{c.Kind, c.Key}] = i
	}
	type item struct {
		c    fsm.Change
		body any
	}
	var items []item
	a.b.FSM().Read(func(s *fsm.State) {
		for i, c := range changes {
			if lastAt[key{c.Kind, c.Key}] != i {
				continue
			}
			if !admin && (c.Owner == "" || c.Owner != rq.user.ID) {
				continue
			}
			if onlyApp != "" && c.Key != onlyApp && c.App != onlyApp {
				continue
			}
			var body any
			switch c.Kind {
			case fsm.ChangeApp:
				if x, ok := s.App(c.Key); ok {
					body = appIn(s, x)
				}
			case fsm.ChangeBackup:
				if x, ok := s.Backup(c.Key); ok {
					body = backupOut(x)
				}
			case fsm.ChangeNode:
				if x, ok := s.Node(c.Key); ok {
					body = x // rendered below, outside the FSM's lock
				}
			case fsm.ChangeAppDeleted:
				body = map[string]string{"id": c.Key}
			case fsm.ChangeBackupDeleted:
				body = map[string]string{"id": c.Key, "app_id": c.App}
			case fsm.ChangeNodeDeleted:
				body = map[string]string{"name": c.Key}
			}
			if body != nil { // nil: gone since, a deletion follows
				items = append(items, item{c, body})
			}
		}
	})
	out := make([]event, 0, len(items))
	for _, it := range items {
		if n, ok := it.body.(fsm.NodeRecord); ok {
			it.body = a.nodeOut(n)
		}
		data, err := json.Marshal(it.body)
		if err != nil {
			continue
		}
		out = append(out, event{id: it.c.ID.String(), name: it.c.Kind, data: data})
	}
	return out
}

// asStreams returns err's errStreams, or nil.
func asStreams(err error) *errStreams {
	var e *errStreams
	if errors.As(err, &e) {
		return e
	}
	return nil
}
