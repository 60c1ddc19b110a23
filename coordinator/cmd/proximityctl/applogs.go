package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// appLogLine is a line of the app's own output (GET .../logs?source=app).
type appLogLine struct {
	Time    *time.Time `json:"time"`
	Service string     `json:"service"`
	Line    string     `json:"line"`
}

func (l appLogLine) row() []string {
	t := "-"
	if l.Time != nil {
		t = l.Time.Local().Format("2006-01-02 15:04:05")
	}
	return []string{t, dash(l.Service), l.Line}
}

// appLogsCmd is `app logs APP`: the deployment log, or with --app the
// app's own output, read or (-f) followed.
func appLogsCmd(e *env) *cobra.Command {
	var limit int
	var since string
	var own, follow bool
	cmd := &cobra.Command{
		Use:   "logs APP",
		Short: "Show an app's deployment log, or with --app its own output (-f to follow it)",
		Long: `Show an app's deployment log (the default), or with --app the app's own output:
docker compose logs of its project, read from its node.

--limit is 1-1000 lines of the deployment log, 1-5000 of the app's (default 100).
--since keeps the lines from a time (RFC 3339) or a duration ago (10m, 1h30m).
-f (with --app) follows the output as it comes until interrupted or the app stops;
with -o json it prints one JSON object per line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if follow && !own {
				return errors.New("--follow needs --app: only the app's own output can be followed")
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if since != "" {
				q.Set("since", since)
			}
			path := "/api/v1/apps/" + url.PathEscape(args[0]) + "/logs?"
			if !own {
				var out struct {
					Items []logLine `json:"items"`
				}
				if err := e.call("GET", path+q.Encode(), nil, &out); err != nil {
					return err
				}
				var rows [][]string
				for _, l := range out.Items {
					rows = append(rows, []string{l.At.Local().Format("2006-01-02 15:04:05"), l.Msg})
				}
				return e.print(out, []string{"TIME", "MESSAGE"}, rows)
			}
			q.Set("source", "app")
			if follow {
				q.Set("follow", "true")
				return e.followAppLogs(path + q.Encode())
			}
			var out struct {
				Items []appLogLine `json:"items"`
			}
			if err := e.call("GET", path+q.Encode(), nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, l := range out.Items {
				rows = append(rows, l.row())
			}
			return e.print(out, []string{"TIME", "SERVICE", "LINE"}, rows)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "lines: 1-1000 of the deployment log, 1-5000 with --app")
	cmd.Flags().StringVar(&since, "since", "", "only lines from this time (RFC 3339) or this long ago (10m)")
	cmd.Flags().BoolVar(&own, "app", false, "the app's own output (docker compose logs) instead of the deployment log")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "with --app: follow the output as it comes")
	return cmd
}

// followAppLogs reads the Server-Sent Events of a followed log and prints
// each line as it comes, until the stream ends or the command is
// interrupted. --timeout bounds only the wait for the stream to start.
func (e *env) followAppLogs(path string) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect}
	started := time.AfterFunc(e.timeout, cancel)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, explainTLS(c.base, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		ae := &apiError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		var raw strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && raw.Len() < 64<<10 {
			raw.WriteString(sc.Text())
		}
		if json.Unmarshal([]byte(raw.String()), ae) != nil || ae.Detail == "" {
			ae.Detail = raw.String()
		}
		return ae
	}
	started.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := e.logEvent(event, data); err != nil {
				return err
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"): // a comment: heartbeat
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the log stream broke off: %w", err)
	}
	return nil
}

// logEvent prints one event of a followed log.
func (e *env) logEvent(event, data string) error {
	switch event {
	case "log":
		if e.output == "json" {
			_, err := fmt.Fprintln(e.stdout, data)
			return err
		}
		var l appLogLine
		if err := json.Unmarshal([]byte(data), &l); err != nil {
			return fmt.Errorf("a log event that is not JSON: %q", data)
		}
		_, err := fmt.Fprintln(e.stdout, strings.Join(l.row(), "  "))
		return err
	case "end":
		var end struct{ Reason string }
		if json.Unmarshal([]byte(data), &end) == nil && end.Reason != "" {
			fmt.Fprintln(e.stderr, "end of the log:", end.Reason)
		}
	}
	return nil
}

// appSecretsCmd is `app secrets APP`: the app's generated secrets, read
// from its node.
func appSecretsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "secrets APP",
		Short: "Show an app's generated secrets (read from its node; the read is audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out struct {
				Items []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"items"`
			}
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(args[0])+"/secrets", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, s := range out.Items {
				rows = append(rows, []string{s.Name, s.Value})
			}
			return e.print(out, []string{"NAME", "VALUE"}, rows)
		},
	}
}
