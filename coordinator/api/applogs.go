package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/coordinator/agentsvc"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// An app's logs: GET /api/v1/apps/{id}/logs. source=deploy (the default)
// is the deployment log kept in Raft; source=app is the app's own output,
// `docker compose logs` read from its node over the live channel
// (agentsvc.Query), never stored. With follow=true the app's log is a
// stream of Server-Sent Events.

// logHeartbeat is the interval of the comment that keeps a followed log's
// connection alive while the app prints nothing.
const logHeartbeat = 15 * time.Second

// maxDeployLimit bounds limit for the deployment log, and
// agentsvc.LiveMaxLines for the app's.
const maxDeployLimit = 1000

// appLogLine is one line of the app's own log.
type appLogLine struct {
	// Time is Docker's timestamp of the line, absent when it has none.
	Time *time.Time `json:"time,omitempty"`
	// Service is the container that printed it, as Compose names it
	// (app-SERVICE-1).
	Service string `json:"service"`
	Line    string `json:"line"`
}

// logQuery is the parameters of a logs request, validated.
type logQuery struct {
	source string
	limit  int
	since  string    // for the agent: RFC 3339 in UTC, or a duration
	after  time.Time // the same, as a time (deployment log)
	follow bool
}

func (a *API) parseLogQuery(rq *request) (logQuery, error) {
	v := rq.r.URL.Query()
	q := logQuery{source: v.Get("source"), limit: agentsvc.LiveDefaultLines}
	switch q.source {
	case "":
		q.source = "deploy"
	case "deploy", "app":
	default:
		return q, problem.E(problem.Invalid, "source: %q must be deploy or app", q.source)
	}
	max := maxDeployLimit
	if q.source == "app" {
		max = agentsvc.LiveMaxLines
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > max {
			return q, problem.E(problem.Invalid, "limit: %q must be 1-%d", s, max)
		}
		q.limit = n
	}
	if s := v.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			if d <= 0 {
				return q, problem.E(problem.Invalid, "since: %q must be a positive duration (10m) or an RFC 3339 time", s)
			}
			q.since, q.after = d.String(), a.now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.since, q.after = t.UTC().Format(time.RFC3339Nano), t
		} else {
			return q, problem.E(problem.Invalid, "since: %q must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration (10m)", s)
		}
	}
	if s := v.Get("follow"); s != "" {
		f, err := strconv.ParseBool(s)
		if err != nil {
			return q, problem.E(problem.Invalid, "follow: %q must be true or false", s)
		}
		if f && q.source != "app" {
			return q, problem.E(problem.Invalid, "follow: only the app's own log (source=app) can be followed")
		}
		q.follow = f
	}
	return q, nil
}

func (a *API) appLogs(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	q, err := a.parseLogQuery(rq)
	if err != nil {
		return 0, nil, err
	}
	if q.source == "app" {
		return a.appOwnLogs(rq, app, q)
	}
	lines := app.Log
	if !q.after.IsZero() {
		i := 0
		for i < len(lines) && lines[i].At.Before(q.after) {
			i++
		}
		lines = lines[i:]
	}
	if len(lines) > q.limit {
		lines = lines[len(lines)-q.limit:]
	}
	if lines == nil {
		lines = []fsm.LogLine{}
	}
	return http.StatusOK, map[string]any{"items": lines, "total": len(app.Log)}, nil
}

// liveQuerier is the agent service's live channel (agentsvc.Query).
type liveQuerier interface {
	Query(ctx context.Context, node string, req *pb.LiveRequest) (<-chan agentsvc.Chunk, error)
}

// live is the live channel to the agents, or nil on an API without them.
func (a *API) live() liveQuerier {
	q, _ := a.agents.(liveQuerier)
	return q
}

// liveTarget checks that an app's container can answer a live request:
// it exists, the app is not stopped, its node is up and its agent is
// connected. It returns the node.
func (a *API) liveTarget(app fsm.App, what string) (string, error) {
	if a.live() == nil {
		return "", problem.E(problem.Unavailable, "this server has no agent service")
	}
	if app.VMID == 0 || app.Node == "" {
		return "", problem.E(problem.Conflict, "app %s has no container yet (status %s); %s can be read once it runs", app.ID, app.Status, what)
	}
	if app.Status == fsm.AppStopped {
		return "", problem.E(problem.Conflict, "app %s is stopped; start it to read %s", app.ID, what)
	}
	down := false
	a.b.FSM().Read(func(s *fsm.State) {
		n, ok := s.Node(app.Node)
		down = !ok || n.Status == fsm.NodeDown
	})
	if down {
		return "", problem.E(problem.Unavailable, "node %s of app %s is down; %s cannot be read now", app.Node, app.ID, what)
	}
	return app.Node, nil
}

// appOwnLogs answers the app's own log, or streams it (follow).
func (a *API) appOwnLogs(rq *request, app fsm.App, q logQuery) (int, any, error) {
	node, err := a.liveTarget(app, "its logs")
	if err != nil {
		return 0, nil, err
	}
	req := &pb.LiveRequest{Kind: agentsvc.LiveAppLogs, Vmid: uint32(app.VMID),
		Logs: &pb.LogsArgs{Tail: uint32(q.limit), Since: q.since, Follow: q.follow}}
	if q.follow {
		if rq.w == nil {
			return 0, nil, problem.E(problem.Internal, "route %s is not a streaming route", rq.r.URL.Path)
		}
		return a.followAppLogs(rq, node, req)
	}
	chunks, err := a.live().Query(rq.ctx, node, req)
	if err != nil {
		return 0, nil, err
	}
	items := []appLogLine{}
	truncated := false
	var rest []byte
	for c := range chunks {
		if c.Err != nil {
			return 0, nil, c.Err
		}
		truncated = truncated || c.Truncated
		rest = append(rest, c.Data...)
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			items = append(items, parseLogLine(string(rest[:i])))
			rest = rest[i+1:]
		}
	}
	if len(items) > q.limit {
		items = items[len(items)-q.limit:]
	}
	return http.StatusOK, map[string]any{"items": items, "total": len(items), "truncated": truncated}, nil
}

// followAppLogs streams the app's log as Server-Sent Events: the headers
// and a comment at once, then an event "log" per line (data: the line's
// JSON), a heartbeat comment every logHeartbeat, and an event "end"
// (data: {"reason"}) when the node's answer ends. It returns when the
// answer ends or the client leaves; leaving cancels the request on the
// agent.
func (a *API) followAppLogs(rq *request, node string, req *pb.LiveRequest) (int, any, error) {
	// The stream outlives the request's deadline: only the client (and
	// the live channel's own bound) end it.
	if rq.r.Method == http.MethodHead {
		startSSE(rq.w) // the headers a GET would have, and nothing to follow
		return streamed, nil, nil
	}
	ctx, cancel := context.WithCancel(rq.r.Context())
	defer cancel()
	// A followed log counts among the caller's open streams (events.go).
	release, err := a.streams.acquire(rq.user.ID)
	if err != nil {
		return 0, nil, err
	}
	defer release()
	chunks, err := a.live().Query(ctx, node, req)
	if err != nil {
		return 0, nil, err
	}
	sse := startSSE(rq.w)
	if sse.Comment("logs of app "+rq.r.PathValue("id")) != nil {
		return streamed, nil, nil
	}
	beat := time.NewTicker(logHeartbeat)
	defer beat.Stop()
	var rest []byte
	for {
		select {
		case <-ctx.Done():
			return streamed, nil, nil
		case <-a.streams.done:
			_ = sse.Event("", "end", []byte(`{"reason":"the server is shutting down"}`))
			return streamed, nil, nil
		case <-beat.C:
			if sse.Comment("heartbeat") != nil {
				return streamed, nil, nil
			}
		case c, ok := <-chunks:
			if !ok {
				_ = sse.Event("", "end", []byte(`{"reason":"the app's log ended"}`))
				return streamed, nil, nil
			}
			rest = append(rest, c.Data...)
			for {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				b, _ := json.Marshal(parseLogLine(string(rest[:i])))
				rest = rest[i+1:]
				if sse.Event("", "log", b) != nil {
					return streamed, nil, nil
				}
			}
			if c.Err != nil || c.Truncated {
				reason := "the stream reached its time limit"
				if c.Err != nil {
					reason = problem.BodyFor(c.Err, rq.id).Detail
				}
				b, _ := json.Marshal(map[string]string{"reason": reason})
				_ = sse.Event("", "end", b)
				return streamed, nil, nil
			}
		}
	}
}

// parseLogLine splits a `docker compose logs --timestamps` line:
// "app-web-1  | 2026-01-02T15:04:05.000000000Z message".
func parseLogLine(s string) appLogLine {
	svc, rest, ok := strings.Cut(s, " | ")
	if !ok {
		return appLogLine{Line: s}
	}
	out := appLogLine{Service: strings.TrimSpace(svc), Line: rest}
	if ts, msg, ok := strings.Cut(rest, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out.Time, out.Line = &t, msg
		}
	}
	return out
}
