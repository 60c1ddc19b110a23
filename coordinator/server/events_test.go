package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// sseEvent is one event read from GET /api/v1/events.
type sseEvent struct {
	ID, Name string
	Data     json.RawMessage
}

// openEvents opens the events stream on server i; events arrive on the
// channel until the test ends.
func (tc *testCluster) openEvents(i int, token, lastID string) (<-chan sseEvent, *http.Response) {
	tc.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tc.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.nodes[i].url()+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := tc.http.Do(req)
	if err != nil {
		tc.t.Fatalf("events: %v", err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, resp
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" || len(data) > 0 {
					ev.Data = json.RawMessage(strings.Join(data, "\n"))
					out <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return out, resp
}

// nextEvent waits for the next event that matches.
func nextEvent(t *testing.T, ch <-chan sseEvent, what string, match func(sseEvent, appOut) bool, seen func(sseEvent)) sseEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before %s", what)
			}
			if seen != nil {
				seen(ev)
			}
			var a appOut
			_ = json.Unmarshal(ev.Data, &a)
			if match(ev, a) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event: %s", what)
		}
	}
}

// TestEventsNotSeenByOtherUser: the owner's stream carries its app's
// events, data as GET /api/v1/apps/{id} shows it; another user's stream
// carries none of them, only its own; an admin sees both, and nodes.
func TestEventsNotSeenByOtherUser(t *testing.T) {
	tc, _, tok := appCluster(t)
	alice, _ := tc.openEvents(0, tok["alice"], "")
	bob, _ := tc.openEvents(0, tok["bob"], "")
	admin, _ := tc.openEvents(0, tok["admin"], "")

	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "alices"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	nextEvent(t, alice, "alice's app running", func(ev sseEvent, x appOut) bool {
		return ev.Name == "app" && x.ID == a.ID && x.Status == "running"
	}, nil)
	var api map[string]any
	if _, err := tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &api); err != nil {
		t.Fatal(err)
	}

	// Bob's own deploy comes after all of alice's events in the log: by
	// the time his stream shows it, it has passed over hers.
	var b appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["bob"], map[string]any{"catalog_id": "homepage", "hostname": "bobs"}, nil, &b); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	nextEvent(t, bob, "bob's app", func(ev sseEvent, x appOut) bool { return x.ID == b.ID }, func(ev sseEvent) {
		if strings.Contains(string(ev.Data), a.ID) || ev.Name == "node" {
			t.Fatalf("bob's stream carries %s %s", ev.Name, ev.Data)
		}
	})
	sawNode, sawAlice := false, false
	nextEvent(t, admin, "bob's app on the admin's stream", func(ev sseEvent, x appOut) bool { return x.ID == b.ID }, func(ev sseEvent) {
		sawNode = sawNode || ev.Name == "node"
		if ev.Name == "app" {
			var x map[string]any
			_ = json.Unmarshal(ev.Data, &x)
			sawAlice = sawAlice || x["id"] == a.ID
		}
	})
	if !sawAlice {
		t.Fatal("the admin's stream missed alice's app")
	}
	_ = sawNode // the node joined before the streams opened
	// The data is the API's own rendering of the app.
	for _, k := range []string{"id", "status", "hostname", "vmid", "node", "owner", "catalog_id", "public_ports", "resources", "created_at", "updated_at"} {
		if _, ok := api[k]; !ok {
			t.Fatalf("GET app lacks %q: %v", k, api)
		}
	}
}

// TestEventsResumeDeliversOnlyLaterEvents: a stream reopened with
// Last-Event-ID carries only the events after that id, in order: of two
// deploys, resuming after the first one's last event shows only the
// second; an id that is not one of the stream's is a 400.
func TestEventsResumeDeliversOnlyLaterEvents(t *testing.T) {
	tc, _, tok := appCluster(t)
	first, _ := tc.openEvents(0, tok["alice"], "")
	deploy := func(host string) appOut {
		var a appOut
		if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": host}, nil, &a); err != nil || code != 202 {
			t.Fatalf("deploy: %d %v", code, err)
		}
		return a
	}
	a1 := deploy("earlier")
	tc.waitApp(tok["alice"], a1.ID, "running")
	a2 := deploy("later")
	mark := ""
	nextEvent(t, first, "the second app", func(ev sseEvent, x appOut) bool { return x.ID == a2.ID }, func(ev sseEvent) {
		var x appOut
		_ = json.Unmarshal(ev.Data, &x)
		if x.ID == a1.ID {
			mark = ev.ID
		}
	})
	if mark == "" {
		t.Fatal("no event of the first app")
	}
	after, _ := fsm.ParseChangeID(mark)
	resumed, _ := tc.openEvents(0, tok["alice"], mark)
	prev := after
	nextEvent(t, resumed, "the second app running", func(ev sseEvent, x appOut) bool { return x.ID == a2.ID && x.Status == "running" }, func(ev sseEvent) {
		id, err := fsm.ParseChangeID(ev.ID)
		if err != nil || !prev.Less(id) || strings.Contains(string(ev.Data), a1.ID) {
			t.Fatalf("resumed after %s, got %s after %s (%s %s)", mark, ev.ID, prev, ev.Name, ev.Data)
		}
		prev = id
	})
	if _, resp := tc.openEvents(0, tok["alice"], "yesterday"); resp.StatusCode != 400 {
		t.Fatalf("a made-up Last-Event-ID: %d", resp.StatusCode)
	}
}

// TestEventsStreamsBounded: beyond the per-user bound a stream is
// refused with 429 in the one error format.
func TestEventsStreamsBounded(t *testing.T) {
	tc, _, tok := appCluster(t)
	for i := 0; i < 8; i++ {
		if ch, resp := tc.openEvents(0, tok["alice"], ""); ch == nil {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	if ch, resp := tc.openEvents(0, tok["alice"], ""); ch != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a ninth stream: %d", resp.StatusCode)
	}
	if ch, resp := tc.openEvents(0, tok["bob"], ""); ch == nil {
		t.Fatalf("another user's stream: %d", resp.StatusCode)
	}
}

// TestEventsStreamSendsHeartbeats: with no change to report, the stream
// still sends its heartbeat comment (the interval is the test's).
func TestEventsStreamSendsHeartbeats(t *testing.T) {
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) { cfg.EventsHeartbeat = 20 * time.Millisecond }))
	token := tc.token
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.nodes[0].url()+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := tc.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": proximity events from ") {
		t.Fatalf("first line: %q", sc.Text())
	}
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("the stream ended without a heartbeat: %v", sc.Err())
}

// TestEventsStreamEndsOnShutdown: a server that shuts down ends its open
// streams instead of waiting for them until its deadline.
func TestEventsStreamEndsOnShutdown(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	tc.http.Timeout = 0 // the stream lasts as long as the server lets it
	ch, _ := tc.openEvents(0, tc.waitToken(), "")
	n := tc.nodes[0]
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stream open: %v", err)
	}
	for range ch {
	}
}
