package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
)

// eventsCmd is `events [--app APP]`: the events stream, one line per
// event, until interrupted.
func eventsCmd(e *env) *cobra.Command {
	var appArg string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the changes of your apps and backups (admins: all, and nodes) as they happen",
		Long: `Print the events stream (GET /api/v1/events): one line per change of an app, a backup or
(for admins) a node, until interrupted. With -o json, each line is the event's data: the object
as the API shows it. --app APP (a hostname or an ID) keeps one app's events and its backups'.
The stream resumes by itself where it stopped when the server it reads from stops.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := "/api/v1/events"
			if appArg != "" {
				id, err := e.appID(appArg)
				if err != nil {
					return err
				}
				path += "?app=" + url.QueryEscape(id)
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			lastID := ""
			for {
				stream, err := e.openEvents(ctx, c, path, lastID)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for ev := range stream {
					if ev.id != "" {
						lastID = ev.id
					}
					e.printEvent(ev)
				}
				if ctx.Err() != nil {
					return nil // interrupted
				}
				fmt.Fprintln(e.stderr, "the events stream ended; reconnecting from", lastID)
			}
		},
	}
	cmd.Flags().StringVar(&appArg, "app", "", "only this app's events (its hostname or ID) and its backups'")
	return cmd
}

// printEvent prints one event: its data (-o json), or a line that says
// what changed.
func (e *env) printEvent(ev sse) {
	if e.output == "json" {
		fmt.Fprintln(e.stdout, ev.data)
		return
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(ev.data), &m)
	s := func(k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	var what []string
	switch ev.event {
	case "app":
		status := s("status")
		if st := s("step"); st != "" {
			status += " (" + st + ")"
		}
		what = []string{s("id"), s("hostname"), status, s("error")}
	case "backup":
		what = []string{s("id"), "app " + s("app_id"), s("status"), s("error")}
	case "node":
		what = []string{s("name"), s("status")}
	case "app.deleted", "backup.deleted":
		what = []string{s("id")}
	case "node.deleted":
		what = []string{s("name")}
	case "reset", "end":
		what = []string{s("reason")}
	default:
		what = []string{ev.data}
	}
	var parts []string
	for _, w := range what {
		if w != "" {
			parts = append(parts, w)
		}
	}
	fmt.Fprintf(e.stdout, "%s  %s  %s\n", dash(ev.id), ev.event, strings.Join(parts, "  "))
}
