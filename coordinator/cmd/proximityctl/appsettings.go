package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// catalogEntry is what `catalog show` reads of an entry.
type catalogEntry struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Settings []setting `json:"settings"`
}

// setting is a catalog entry's setting (GET /api/v1/catalog/{id}).
type setting struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Label       string   `json:"label"`
	Description string   `json:"description"`
	Default     string   `json:"default"`
	Required    bool     `json:"required"`
	Min         *int64   `json:"min"`
	Max         *int64   `json:"max"`
	Pattern     string   `json:"pattern"`
	Options     []string `json:"options"`
	Generate    int      `json:"generate"`
}

var settingHeader = []string{"NAME", "TYPE", "DEFAULT", "REQUIRED", "RULES", "LABEL"}

func settingRows(ss []setting) [][]string {
	rows := make([][]string, 0, len(ss))
	for _, s := range ss {
		req := "no"
		if s.Required {
			req = "yes"
		}
		def := s.Default
		if s.Generate > 0 {
			def = fmt.Sprintf("(generated, %d characters)", s.Generate)
		}
		rows = append(rows, []string{s.Name, s.Type, dash(def), req, dash(s.rules()), s.Label})
	}
	return rows
}

// rules is a setting's constraints in a few words.
func (s setting) rules() string {
	var r []string
	unit := ""
	if s.Type == "string" || s.Type == "secret" {
		unit = " characters"
	}
	switch {
	case s.Min != nil && s.Max != nil:
		r = append(r, fmt.Sprintf("%d-%d%s", *s.Min, *s.Max, unit))
	case s.Min != nil:
		r = append(r, fmt.Sprintf("at least %d%s", *s.Min, unit))
	case s.Max != nil:
		r = append(r, fmt.Sprintf("at most %d%s", *s.Max, unit))
	}
	if len(s.Options) > 0 {
		r = append(r, "one of "+strings.Join(s.Options, ", "))
	}
	if s.Pattern != "" {
		r = append(r, "matches "+s.Pattern)
	}
	return strings.Join(r, "; ")
}

// nameValues reads NAME=VALUE arguments; the value may hold '='. A name
// given twice is a usage error.
func nameValues(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &usageError{fmt.Sprintf("--set: %q is not NAME=VALUE", kv)}
		}
		if _, dup := m[k]; dup {
			return nil, &usageError{"--set: " + k + " is given twice"}
		}
		m[k] = v
	}
	return m, nil
}

// configureCmd changes a running or stopped app's settings, and its
// update policy.
func configureCmd(e *env) *cobra.Command {
	var sets []string
	var wait bool
	var autoUpdate, window string
	var minutes int
	c := &cobra.Command{
		Use:   "configure APP [--set NAME=VALUE...] [--auto-update off|notify|auto] [--maintenance-window EVENT]",
		Short: "Change an app's settings (a running app is recreated and health-checked, and rolled back if that fails) or its update policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy := map[string]any{}
			if cmd.Flags().Changed("auto-update") {
				policy["auto_update"] = autoUpdate
			}
			if cmd.Flags().Changed("maintenance-window") {
				policy["maintenance_window"] = window
			}
			if cmd.Flags().Changed("maintenance-window-minutes") {
				policy["maintenance_window_minutes"] = minutes
			}
			if len(sets) == 0 && len(policy) == 0 {
				return &usageError{"configure: give at least one --set NAME=VALUE, or --auto-update, --maintenance-window or --maintenance-window-minutes"}
			}
			var a app
			if len(policy) > 0 {
				if err := e.call("PATCH", "/api/v1/apps/"+url.PathEscape(args[0]), policy, &a); err != nil {
					return err
				}
				if len(sets) == 0 {
					return e.print(a, append(appHeader, "AUTO-UPDATE", "WINDOW"), [][]string{append(a.row(), a.AutoUpdate, policyWindow(a))})
				}
			}
			m, err := nameValues(sets)
			if err != nil {
				return err
			}
			var mark logCursor
			if wait {
				mark = e.logMark(args[0])
			}
			if err := e.call("PATCH", "/api/v1/apps/"+url.PathEscape(args[0]), map[string]any{"settings": m}, &a); err != nil {
				return err
			}
			if wait {
				return e.wait(waitFor{app: a.ID, shown: mark})
			}
			return e.print(a, appHeader, [][]string{a.row()})
		},
	}
	c.Flags().StringArrayVar(&sets, "set", nil, "NAME=VALUE for a setting to change (repeatable)")
	c.Flags().BoolVar(&wait, "wait", false, "show the progress until the operation ends (within --timeout)")
	c.Flags().StringVar(&autoUpdate, "auto-update", "", "the update policy: off, notify (an event when an update is available) or auto (update inside the maintenance window)")
	c.Flags().StringVar(&window, "maintenance-window", "", "when automatic updates may start: a Proxmox calendar event ('sun 03:00', 'mon..fri 22:00'); empty removes it")
	c.Flags().IntVar(&minutes, "maintenance-window-minutes", 0, "how long each maintenance window lasts (default 60)")
	return c
}

// policyWindow is an app's maintenance window as a column.
func policyWindow(a app) string {
	if a.MaintenanceWindow == "" {
		return "-"
	}
	return fmt.Sprintf("%s (%d min)", a.MaintenanceWindow, a.MaintenanceWindowMinutes)
}
