package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

// waitError is an operation that ended in error, or a wait that timed
// out: the command exits 1, like a refusal by the server.
type waitError struct{ msg string }

func (e *waitError) Error() string { return e.msg }

// waitFor is what a --wait follows: an app's operation, or one backup of
// it (backup create).
type waitFor struct {
	app    string
	backup string
	// shown is the app's log as it was before the command asked for the
	// operation: --wait prints only the lines after it.
	shown logCursor
}

// logCursor remembers the last log line printed.
type logCursor struct {
	last *logLine
}

// fresh returns the lines of items after the cursor's line (all of them
// when the cursor has none, or when that line has scrolled out of the
// window read), and moves the cursor to the end.
func (c *logCursor) fresh(items []logLine) []logLine {
	from := 0
	if c.last != nil {
		for i := len(items) - 1; i >= 0; i-- {
			if items[i].At.Equal(c.last.At) && items[i].Msg == c.last.Msg {
				from = i + 1
				break
			}
		}
	}
	if len(items) > 0 {
		l := items[len(items)-1]
		c.last = &l
	}
	return items[from:]
}

// logMark reads where app id's log stands now, so that a --wait after the
// next request prints only what that request adds.
func (e *env) logMark(id string) logCursor {
	var out struct {
		Items []logLine `json:"items"`
	}
	var c logCursor
	if e.call("GET", "/api/v1/apps/"+url.PathEscape(id)+"/logs?limit=1", nil, &out) == nil && len(out.Items) > 0 {
		c.last = &out.Items[len(out.Items)-1]
	}
	return c
}

// wait follows an operation until it ends, printing each new line of the
// app's log once: through the events stream (GET /api/v1/events?app=ID),
// or by polling when the stream cannot be opened. The whole command,
// request included, ends by --timeout: a wait that runs out says so and
// fails; an operation that ends in error fails.
func (e *env) wait(w waitFor) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(context.Background(), e.start.Add(e.timeout))
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	stream, err := e.openEvents(ctx, c, "/api/v1/events?app="+url.QueryEscape(w.app), "")
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(e.stderr, "the events stream cannot be opened (%v); polling instead\n", err)
	}
	lastID, state := "", ""
	for {
		done, now, err := e.waitCheck(ctx, c, &w)
		if done {
			return err
		}
		if now != "" {
			state = now
		}
		if ctx.Err() == nil {
			if stream != nil {
				select {
				case ev, ok := <-stream:
					if ok {
						if ev.id != "" {
							lastID = ev.id
						}
						continue
					}
					// The stream ended (the server stopped): follow it on
					// again from the last event, or poll.
					stream, _ = e.openEvents(ctx, c, "/api/v1/events?app="+url.QueryEscape(w.app), lastID)
				case <-ctx.Done():
				}
			} else {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &waitError{fmt.Sprintf("interrupted while %s is %s; the operation goes on", w.app, state)}
			}
			return &waitError{fmt.Sprintf("timed out after %s (--timeout) while %s is %s; the operation goes on: follow it with proximityctl events --app %s, or wait longer with --timeout",
				e.timeout, w.app, state, w.app)}
		}
	}
}

// waitCheck prints the app's new log lines and reports whether the wait
// is over (with the error it ends with) and, if not, the app's status.
func (e *env) waitCheck(ctx context.Context, c *client, w *waitFor) (bool, string, error) {
	// The app first, then its log: the log read after the app ends
	// holds every line up to that end.
	path := "/api/v1/apps/" + url.PathEscape(w.app)
	var a app
	if err := c.do(ctx, "GET", path, nil, &a); err != nil {
		return e.waitGone(ctx, w, err)
	}
	var logs struct {
		Items []logLine `json:"items"`
	}
	if err := c.do(ctx, "GET", path+"/logs?limit=1000", nil, &logs); err != nil {
		return e.waitGone(ctx, w, err)
	}
	for _, l := range w.shown.fresh(logs.Items) {
		fmt.Fprintf(e.stdout, "%s  %s\n", l.At.Local().Format("15:04:05"), l.Msg)
	}
	status := a.Status
	if a.Step != "" {
		status += " (" + a.Step + ")"
	}
	if w.backup != "" {
		var out struct {
			Items []backup `json:"items"`
		}
		if err := c.do(ctx, "GET", path+"/backups", nil, &out); err != nil {
			return e.waitGone(ctx, w, err)
		}
		for _, b := range out.Items {
			switch {
			case b.ID != w.backup:
			case b.Status == "ready":
				fmt.Fprintf(e.stdout, "backup %s is ready: %s\n", b.ID, b.Volid)
				return true, "", nil
			case b.Status == "failed":
				return true, "", &waitError{fmt.Sprintf("backup %s failed: %s", b.ID, b.Error)}
			}
		}
		return false, status, nil
	}
	if a.Operation != "" {
		return false, status, nil
	}
	fmt.Fprintf(e.stdout, "%s is %s\n", a.ID, a.Status)
	if a.Status == "error" {
		return true, "", &waitError{fmt.Sprintf("%s ended in error: %s", a.ID, a.Error)}
	}
	return true, "", nil
}

// waitGone ends a wait whose app is gone (the end of a delete) or whose
// requests fail; a request cut by the deadline is not an answer.
func (e *env) waitGone(ctx context.Context, w *waitFor, err error) (bool, string, error) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		fmt.Fprintf(e.stdout, "%s is deleted\n", w.app)
		return true, "", nil
	}
	if ctx.Err() != nil {
		return false, "", nil
	}
	return true, "", err
}

// sse is one event of the events stream.
type sse struct {
	id, event, data string
}

// openEvents opens an events stream; its events arrive on the channel,
// which closes when the stream ends. --timeout bounds the opening; ctx
// the stream.
func (e *env) openEvents(ctx context.Context, c *client, path, lastID string) (<-chan sse, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// The client's own timeout is for whole answers; a stream outlives it.
	hc := &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect}
	octx, cancel := context.WithCancel(ctx)
	req = req.WithContext(octx)
	opening := time.AfterFunc(e.timeout, cancel)
	resp, err := hc.Do(req)
	opening.Stop()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", path, explainTLS(c.base, err))
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer cancel()
		defer resp.Body.Close()
		ae := &apiError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, ae) != nil || ae.Detail == "" {
			ae.Detail = strings.TrimSpace(string(raw))
		}
		return nil, ae
	}
	out := make(chan sse, 64)
	go func() {
		defer cancel()
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					select {
					case out <- ev:
					case <-octx.Done():
						return
					}
				}
				ev = sse{}
			case strings.HasPrefix(line, ":"): // a comment: the heartbeat
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if ev.data != "" {
					ev.data += "\n"
				}
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out, nil
}
