package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type app struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Hostname       string `json:"hostname"`
	VMID           int    `json:"vmid"`
	Node           string `json:"node"`
	Owner          string `json:"owner"`
	CatalogID      string `json:"catalog_id"`
	CatalogVersion string `json:"catalog_version"`
	PublicPorts    []int  `json:"public_ports"`
	IP             string `json:"ip,omitempty"`
	Operation      string `json:"operation,omitempty"`
	Step           string `json:"step,omitempty"`
	Error          string `json:"error,omitempty"`
	// UpdateAvailable is the newer version the catalog offers (null: none).
	UpdateAvailable *string `json:"update_available"`
	// AutoUpdate and the maintenance window are the app's update policy.
	AutoUpdate               string `json:"auto_update"`
	MaintenanceWindow        string `json:"maintenance_window"`
	MaintenanceWindowMinutes int    `json:"maintenance_window_minutes"`
}

// update is the newer version an app can move to, or "-".
func (a app) update() string {
	if a.UpdateAvailable == nil {
		return "-"
	}
	return *a.UpdateAvailable
}

var appHeader = []string{"ID", "CATALOG", "HOSTNAME", "STATUS", "NODE", "VMID", "PORTS"}

func (a app) row() []string {
	ports := make([]string, len(a.PublicPorts))
	for i, p := range a.PublicPorts {
		ports[i] = strconv.Itoa(p)
	}
	status := a.Status
	if a.Step != "" {
		status += " (" + a.Step + ")"
	}
	return []string{a.ID, a.CatalogID, a.Hostname, status, a.Node, strconv.Itoa(a.VMID), dash(strings.Join(ports, ","))}
}

type logLine struct {
	At  time.Time `json:"at"`
	Msg string    `json:"msg"`
}

func appsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "app", Aliases: []string{"apps"}, Short: "Deploy and operate apps",
		Long: "Deploy and operate apps. APP is an app's hostname or its ID (app_…)."}
	var node string
	var envs, sets []string
	var wait bool
	deploy := &cobra.Command{
		Use: "deploy CATALOG_ID HOSTNAME", Short: "Deploy a catalog app", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			in := map[string]any{"catalog_id": args[0], "hostname": args[1]}
			if node != "" {
				in["node"] = node
			}
			for field, kvs := range map[string][]string{"settings": sets, "environment": envs} {
				if len(kvs) == 0 {
					continue
				}
				m, err := nameValues(kvs)
				if err != nil {
					return err
				}
				in[field] = m
			}
			var a app
			if err := e.call("POST", "/api/v1/apps", in, &a); err != nil {
				return err
			}
			if !wait {
				return e.print(a, appHeader, [][]string{a.row()})
			}
			return e.wait(waitFor{app: a.ID})
		},
	}
	deploy.Flags().StringVar(&node, "node", "", "the node to deploy on (default: the one with the most free memory)")
	deploy.Flags().StringArrayVar(&sets, "set", nil, "NAME=VALUE for one of the app's settings (repeatable; see catalog show)")
	deploy.Flags().StringArrayVar(&envs, "env", nil, "NAME=VALUE, the same as --set (repeatable)")
	deploy.Flags().BoolVar(&wait, "wait", false, "show the deployment's progress until it is running or failed (within --timeout)")

	var updatable bool
	list := &cobra.Command{
		Use: "list", Short: "List your apps (admins: all apps); UPDATE is the newer version the catalog offers", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []app `json:"items"`
				Total int   `json:"total"`
			}
			path := "/api/v1/apps?per_page=100"
			if updatable {
				path += "&update_available=true"
			}
			if err := e.call("GET", path, nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, a := range out.Items {
				rows = append(rows, append(a.row(), a.update()))
			}
			return e.print(out, append(appHeader, "UPDATE"), rows)
		},
	}
	list.Flags().BoolVar(&updatable, "update-available", false, "only the apps whose catalog entry offers a newer version")
	show := &cobra.Command{
		Use: "show APP", Short: "Show one app", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var a app
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(args[0]), nil, &a); err != nil {
				return err
			}
			return e.print(a, append(appHeader, "UPDATE", "ERROR"), [][]string{append(a.row(), a.update(), dash(a.Error))})
		},
	}
	cmd.AddCommand(deploy, list, show, configureCmd(e))
	for _, act := range []string{"start", "stop", "restart", "cancel", "delete"} {
		var wait bool
		short := strings.ToUpper(act[:1]) + act[1:] + " an app"
		if act == "cancel" {
			short = "Cancel an app's running operation: its task is stopped and the operation undone"
		}
		c := &cobra.Command{
			Use: act + " APP", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				var a app
				var err error
				var mark logCursor
				if wait {
					mark = e.logMark(args[0])
				}
				if act == "delete" {
					err = e.call("DELETE", "/api/v1/apps/"+url.PathEscape(args[0]), nil, &a)
				} else {
					err = e.call("POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/actions", map[string]string{"action": act}, &a)
				}
				if err != nil {
					return err
				}
				if wait {
					return e.wait(waitFor{app: a.ID, shown: mark})
				}
				return e.print(a, appHeader, [][]string{a.row()})
			},
		}
		c.Flags().BoolVar(&wait, "wait", false, "show the progress until the operation ends (within --timeout)")
		cmd.AddCommand(c)
	}
	logs := appLogsCmd(e)
	metrics := &cobra.Command{
		Use: "metrics APP", Short: "Show an app's CPU, memory, disk and network use", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var m map[string]any
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(args[0])+"/metrics", nil, &m); err != nil {
				return err
			}
			return e.print(m, []string{"STATUS", "CPU", "MEM", "DISK", "NET IN", "NET OUT", "UPTIME"}, [][]string{metricsRow(m)})
		},
	}
	var cloneWait bool
	clone := &cobra.Command{
		Use: "clone APP HOSTNAME", Short: "Clone an app into a new one", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			var a app
			if err := e.call("POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/clone", map[string]string{"hostname": args[1]}, &a); err != nil {
				return err
			}
			if cloneWait {
				return e.wait(waitFor{app: a.ID})
			}
			return e.print(a, appHeader, [][]string{a.row()})
		},
	}
	clone.Flags().BoolVar(&cloneWait, "wait", false, "show the progress until the clone runs (within --timeout)")
	var updateWait bool
	var updateVersion string
	update := &cobra.Command{
		Use:   "update APP [--version V]",
		Short: "Move an app to the version its catalog entry offers: back up, new Compose file, pull, recreate; roll back if the health check fails",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var a app
			var mark logCursor
			if updateWait {
				mark = e.logMark(args[0])
			}
			var body any
			if updateVersion != "" {
				body = map[string]string{"version": updateVersion}
			}
			if err := e.call("POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/update", body, &a); err != nil {
				return err
			}
			if updateWait {
				return e.wait(waitFor{app: a.ID, shown: mark})
			}
			return e.print(a, appHeader, [][]string{a.row()})
		},
	}
	update.Flags().BoolVar(&updateWait, "wait", false, "show the progress until the update ends (within --timeout)")
	update.Flags().StringVar(&updateVersion, "version", "", "the version to move to: must be the one the catalog offers (forces an update that is not newer)")
	// "app backups ..." is "backup ..." (proximityctl backup policy APP is
	// also proximityctl app backups policy APP); hidden from the help, which
	// lists the top-level group.
	appBackups := backupsCmd(e)
	appBackups.Hidden = true
	cmd.AddCommand(logs, appSecretsCmd(e), metrics, clone, update, appOpenCmd(e), appBackups)
	cmd.AddCommand(appRestoreCmds(e)...) // move.go
	return cmd
}

// metricsRow is an app's metrics in human units; "-" where the node has
// not reported.
func metricsRow(m map[string]any) []string {
	num := func(k string, f func(float64) string) string {
		if v, ok := number(m[k]); ok {
			return f(v)
		}
		return "-"
	}
	used := func(k, max string) string {
		u, m := num(k, bytesIEC), num(max, bytesIEC)
		if m == "-" {
			return u
		}
		return u + " / " + m
	}
	status, _ := m["status"].(string)
	return []string{dash(status), num("cpu", percent), used("mem", "max_mem"), used("disk", "max_disk"),
		num("net_in", bytesIEC), num("net_out", bytesIEC),
		num("uptime", func(s float64) string { return shortDuration(time.Duration(s) * time.Second) })}
}

type backup struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Volid     string `json:"volid"`
	Error     string `json:"error"`
	CreatedAt string `json:"created_at"`
}

func backupsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Aliases: []string{"backups"}, Short: "Back up and restore apps",
		Long: "Back up and restore apps. APP is an app's hostname or its ID (app_…)."}
	list := &cobra.Command{
		Use: "list APP", Short: "List an app's backups", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out struct {
				Items []backup `json:"items"`
			}
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(args[0])+"/backups?per_page=100", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, b := range out.Items {
				rows = append(rows, []string{b.ID, b.Status, b.Reason, dash(b.Volid), b.CreatedAt})
			}
			return e.print(out, []string{"ID", "STATUS", "REASON", "VOLUME", "CREATED"}, rows)
		},
	}
	var createWait bool
	create := &cobra.Command{
		Use: "create APP", Short: "Back up an app", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var b backup
			var mark logCursor
			if createWait {
				mark = e.logMark(args[0])
			}
			if err := e.call("POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/backups", nil, &b); err != nil {
				return err
			}
			if createWait {
				return e.wait(waitFor{app: args[0], backup: b.ID, shown: mark})
			}
			return e.print(b, []string{"ID", "STATUS"}, [][]string{{b.ID, b.Status}})
		},
	}
	create.Flags().BoolVar(&createWait, "wait", false, "show the progress until the backup is ready or failed (within --timeout)")
	restore := restoreCmd(e, "restore", "Restore an app from a backup, in place or onto another node (--node)", false) // move.go
	del := &cobra.Command{
		Use: "delete APP BACKUP_ID", Short: "Delete a backup", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			var a app
			if err := e.call("DELETE", "/api/v1/apps/"+url.PathEscape(args[0])+"/backups/"+url.PathEscape(args[1]), nil, &a); err != nil {
				return err
			}
			return e.print(a, appHeader, [][]string{a.row()})
		},
	}
	cmd.AddCommand(list, create, restore, del, backupPolicyCmd(e))
	return cmd
}

func adoptCmds(e *env) []*cobra.Command {
	discover := &cobra.Command{
		Use: "discover", Short: "List containers on the nodes that no app manages (admin)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []struct {
					Node, Name, Status string
					VMID               int
				} `json:"items"`
			}
			if err := e.call("GET", "/api/v1/discover", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, c := range out.Items {
				rows = append(rows, []string{c.Node, strconv.Itoa(c.VMID), c.Name, c.Status})
			}
			return e.print(out, []string{"NODE", "VMID", "NAME", "STATUS"}, rows)
		},
	}
	var owner, hostname string
	var port int
	adopt := &cobra.Command{
		Use: "adopt NODE VMID", Short: "Adopt an existing container as an app of a user (admin)", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			vmid, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("VMID: %q is not a number", args[1])
			}
			var a app
			if err := e.call("POST", "/api/v1/adopt", map[string]any{"node": args[0], "vmid": vmid, "owner": owner, "hostname": hostname, "port": port}, &a); err != nil {
				return err
			}
			return e.print(a, appHeader, [][]string{a.row()})
		},
	}
	adopt.Flags().StringVar(&owner, "owner", "", "user ID of the new owner (required)")
	adopt.Flags().StringVar(&hostname, "hostname", "", "hostname to reserve for it (required)")
	adopt.Flags().IntVar(&port, "port", 0, "the port the app listens on inside the container, 1-65535 (required)")
	for _, f := range []string{"owner", "hostname", "port"} {
		_ = adopt.MarkFlagRequired(f)
	}
	return []*cobra.Command{discover, adopt}
}
