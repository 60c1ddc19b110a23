package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type reservation struct {
	ID          string `json:"id"`
	VMID        int    `json:"vmid"`
	Hostname    string `json:"hostname"`
	Node        string `json:"node"`
	PublicPorts []int  `json:"public_ports"`
	IP          string `json:"ip,omitempty"`
	Owner       string `json:"owner"`
	Index       uint64 `json:"index"`
	CreatedAt   string `json:"created_at"`
}

type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	output         string
	timeout        time.Duration
	conn           connOptions
	stdin          io.Reader // answers to prompts (login, passwd); os.Stdin when nil

	c *client // built by the first call, then reused
	// answer is the body of the last successful e.call, as the API sent
	// it: what -o json prints (output.go).
	answer []byte
	// start is when the command started: --wait ends at start + --timeout.
	start time.Time
}

// api is the command's API client, built on first use so that commands
// that do not call the API need no address or token, and so that the
// warning about --tls-skip-verify is printed once.
func (e *env) api() (*client, error) {
	if e.c == nil {
		c, err := newClient(e.getenv, e.conn, e.timeout, e.stderr)
		if err != nil {
			return nil, err
		}
		e.c = c
	}
	return e.c, nil
}

// close releases the client's idle connections.
func (e *env) close() {
	if e.c != nil {
		e.c.http.CloseIdleConnections()
	}
}

// call sends one request within the command's deadline (--timeout); a
// 2xx answer is decoded into out (if not nil) and kept as e.answer.
func (e *env) call(method, path string, in, out any) error {
	e.answer = nil
	c, err := e.api()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	raw, err := c.doRaw(ctx, method, path, in, out)
	if err == nil {
		e.answer = raw
	}
	return err
}

// rootHelp is the long help of proximityctl: the environment it reads.
const rootHelp = `Operate a Proximity cluster through the operator API of any coordinator server.

The API is HTTPS only. proximityctl reads:
  PROXIMITY_ADDR         the API address: https://HOST:PORT, or HOST:PORT (https is
                         implied); http:// is refused
  PROXIMITY_TOKEN        the API token (an admin's first token is in <data-dir>/admin.token)
  PROXIMITY_CACERT       a PEM file of CA certificates to verify the server with, added to
                         the system's; the coordinator writes its CA to <data-dir>/ca.pem
                         (--ca-cert wins over it)
  PROXIMITY_SKIP_VERIFY  1 or true: do not verify the server (as --tls-skip-verify)

Without PROXIMITY_TOKEN, the session stored by proximityctl login in
$XDG_CONFIG_HOME/proximity/credentials (~/.config/proximity/credentials) is used, with its
address when PROXIMITY_ADDR is unset and its CA when no CA is given; see proximityctl login.

A server that cannot be verified is refused.`

func newRoot(stdout, stderr io.Writer, getenv func(string) string) (*cobra.Command, *env) {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, start: time.Now()}
	root := &cobra.Command{
		Use:           "proximityctl",
		Short:         "Operate a Proximity cluster (reads PROXIMITY_ADDR, PROXIMITY_TOKEN and PROXIMITY_CACERT)",
		Long:          rootHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().DurationVar(&e.timeout, "timeout", 30*time.Second, "deadline for each request to the API")
	root.PersistentFlags().StringVar(&e.conn.caCert, "ca-cert", "", "PEM `FILE` of CA certificates to verify the server with, added to the system's (default $PROXIMITY_CACERT; a coordinator writes its CA to <data-dir>/ca.pem)")
	root.PersistentFlags().BoolVar(&e.conn.skipVerify, "tls-skip-verify", false, "do not verify the server's certificate (also PROXIMITY_SKIP_VERIFY=1); insecure")
	root.AddCommand(reservationsCmd(e), clusterCmd(e), usersCmd(e), settingsCmd(e), nodesCmd(e), joinTokensCmd(e), nodeCmd(e), appsCmd(e), catalogCmd(e), backupsCmd(e))
	root.AddCommand(adoptCmds(e)...)
	root.AddCommand(identityCmds(e)...)
	root.AddCommand(auditCmd(e), eventsCmd(e))
	finishTree(e, root)
	return root, e
}

func reservationRows(rs []reservation) [][]string {
	var rows [][]string
	for _, r := range rs {
		ports := make([]string, len(r.PublicPorts))
		for i, p := range r.PublicPorts {
			ports[i] = strconv.Itoa(p)
		}
		rows = append(rows, []string{r.ID, strconv.Itoa(r.VMID), r.Hostname, r.Node, dash(strings.Join(ports, ",")), dash(r.IP), r.Owner})
	}
	return rows
}

var reservationHeader = []string{"ID", "VMID", "HOSTNAME", "NODE", "PORTS", "IP", "OWNER"}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reservationsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "reservations", Aliases: []string{"res"}, Short: "Reserve and release VMIDs, ports, hostnames and addresses"}
	var page, perPage int
	var hostname string
	list := &cobra.Command{
		Use: "list", Short: "List reservations", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
			if hostname != "" {
				q.Set("hostname", hostname)
			}
			var out struct {
				Items   []reservation `json:"items"`
				Total   int           `json:"total"`
				Page    int           `json:"page"`
				PerPage int           `json:"per_page"`
			}
			if err := e.call("GET", "/api/v1/reservations?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return e.print(out, reservationHeader, reservationRows(out.Items))
		},
	}
	list.Flags().IntVar(&page, "page", 1, "page number (from 1)")
	list.Flags().IntVar(&perPage, "per-page", 50, "items per page (1-100)")
	list.Flags().StringVar(&hostname, "hostname", "", "only the reservation holding this hostname")

	var node, owner, requestID string
	var ports int
	var ip bool
	create := &cobra.Command{
		Use: "create HOSTNAME --node NODE", Short: "Reserve a VMID, hostname, public ports and optionally an address", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			in := map[string]any{"hostname": args[0], "node": node, "public_ports": ports, "ip": ip}
			if owner != "" {
				in["owner"] = owner
			}
			if requestID != "" {
				in["request_id"] = requestID
			}
			var r reservation
			if err := e.call("POST", "/api/v1/reservations", in, &r); err != nil {
				return err
			}
			return e.print(r, reservationHeader, reservationRows([]reservation{r}))
		},
	}
	create.Flags().StringVar(&node, "node", "", "Proxmox node the ports are on (required)")
	create.Flags().IntVar(&ports, "ports", 0, "number of public ports")
	create.Flags().BoolVar(&ip, "ip", false, "also reserve an address from the configured subnet")
	create.Flags().StringVar(&owner, "owner", "", "owner recorded with the reservation")
	create.Flags().StringVar(&requestID, "request-id", "", "make the request idempotent: repeating it returns the first answer")
	_ = create.MarkFlagRequired("node")

	get := &cobra.Command{
		Use: "get ID", Short: "Show one reservation", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var r reservation
			if err := e.call("GET", "/api/v1/reservations/"+url.PathEscape(args[0]), nil, &r); err != nil {
				return err
			}
			return e.print(r, reservationHeader, reservationRows([]reservation{r}))
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Aliases: []string{"release"}, Short: "Release a reservation and everything it holds", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.call("DELETE", "/api/v1/reservations/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "released %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}

type clusterInfo struct {
	Self struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"self"`
	Leader struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
	} `json:"leader"`
	Members []struct {
		ID       string   `json:"id"`
		RaftAddr string   `json:"raft_addr"`
		HTTPAddr string   `json:"http_addr"`
		Suffrage string   `json:"suffrage"`
		Keys     []string `json:"keys"`
	} `json:"members"`
	SealedBy     string `json:"sealed_by"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

func clusterCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use: "cluster", Short: "Show the coordinator cluster", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var in clusterInfo
			if err := e.call("GET", "/api/v1/cluster", nil, &in); err != nil {
				return err
			}
			var rows [][]string
			for _, m := range in.Members {
				role := m.Suffrage
				if m.ID == in.Leader.ID {
					role += " (leader)"
				}
				rows = append(rows, []string{m.ID, role, m.RaftAddr, dash(m.HTTPAddr), dash(strings.Join(m.Keys, ","))})
			}
			// KEYS lists each server's cluster keys, primary first; a
			// rotation is complete when every row shows, alone, the key
			// the secrets are sealed with.
			if err := e.print(in, []string{"ID", "ROLE", "RAFT", "HTTP", "KEYS"}, rows); err != nil || e.output != "table" {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "\nSecrets sealed with key %s.\n", dash(in.SealedBy))
			return err
		},
	}
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove a server from the cluster for good", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.call("DELETE", "/api/v1/cluster/members/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(remove)
	return cmd
}

type user struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt string `json:"created_at"`
}

func usersCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users and their API tokens"}
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []user `json:"items"`
				Total int    `json:"total"`
			}
			if err := e.call("GET", "/api/v1/users?per_page=100", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, u := range out.Items {
				rows = append(rows, []string{u.ID, u.Name, u.Role})
			}
			return e.print(out, []string{"ID", "NAME", "ROLE"}, rows)
		},
	}
	var role string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a user", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var u user
			if err := e.call("POST", "/api/v1/users", map[string]string{"name": args[0], "role": role}, &u); err != nil {
				return err
			}
			return e.print(u, []string{"ID", "NAME", "ROLE"}, [][]string{{u.ID, u.Name, u.Role}})
		},
	}
	create.Flags().StringVar(&role, "role", "user", "admin or user")
	token := &cobra.Command{
		Use: "token USER_ID", Short: "Create an API token for a user (the secret is shown once)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var t struct {
				ID    string `json:"id"`
				Token string `json:"token"`
			}
			if err := e.call("POST", "/api/v1/users/"+url.PathEscape(args[0])+"/tokens", nil, &t); err != nil {
				return err
			}
			return e.print(t, []string{"ID", "TOKEN"}, [][]string{{t.ID, t.Token}})
		},
	}
	cmd.AddCommand(list, create, token)
	cmd.AddCommand(userIdentityCmds(e)...)
	return cmd
}

type network struct {
	Subnet  string   `json:"subnet"`
	Gateway string   `json:"gateway"`
	DNS     []string `json:"dns"`
	Bridge  string   `json:"bridge"`
}

func settingsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Show and change cluster settings"}
	show := func(n network) error {
		return e.print(n, []string{"SUBNET", "GATEWAY", "DNS", "BRIDGE"},
			[][]string{{dash(n.Subnet), dash(n.Gateway), dash(strings.Join(n.DNS, ",")), dash(n.Bridge)}})
	}
	get := &cobra.Command{
		Use: "network", Short: "Show the container network settings", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var n network
			if err := e.call("GET", "/api/v1/settings/network", nil, &n); err != nil {
				return err
			}
			return show(n)
		},
	}
	var n network
	set := &cobra.Command{
		Use: "set-network", Short: "Change the container network settings the flags name (the others are kept)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			// A merge patch of the flags given: --dns 9.9.9.9 alone keeps
			// the subnet, the gateway and the bridge.
			patch := changed(c, map[string]any{"subnet": &n.Subnet, "gateway": &n.Gateway, "dns": &n.DNS, "bridge": &n.Bridge})
			if len(patch) == 0 {
				return errors.New("set-network: name a setting to change (--subnet, --gateway, --dns, --bridge)")
			}
			if v, ok := patch["dns"].([]string); ok && v == nil {
				patch["dns"] = []string{}
			}
			var out network
			if err := e.call("PATCH", "/api/v1/settings/network", patch, &out); err != nil {
				return err
			}
			return show(out)
		},
	}
	set.Flags().StringVar(&n.Subnet, "subnet", "", "IPv4 subnet in CIDR form; empty for DHCP")
	set.Flags().StringVar(&n.Gateway, "gateway", "", "gateway inside the subnet")
	set.Flags().StringSliceVar(&n.DNS, "dns", nil, "DNS servers (up to 3; an empty value for none)")
	set.Flags().StringVar(&n.Bridge, "bridge", "", "Proxmox bridge for container NICs")
	type resourceSettings struct {
		SwapMB        int    `json:"swap_mb"`
		Storage       string `json:"storage"`
		BackupStorage string `json:"backup_storage"`
	}
	showResources := func(r resourceSettings) error {
		return e.print(r, []string{"SWAP MB", "STORAGE", "BACKUP STORAGE"}, [][]string{{strconv.Itoa(r.SwapMB), r.Storage, r.BackupStorage}})
	}
	resources := &cobra.Command{
		Use: "resources", Short: "Show the resource defaults of deploys", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var r resourceSettings
			if err := e.call("GET", "/api/v1/settings/resources", nil, &r); err != nil {
				return err
			}
			return showResources(r)
		},
	}
	var res resourceSettings
	setResources := &cobra.Command{
		Use: "set-resources", Short: "Change the resource defaults the flags name (the others are kept)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			patch := changed(c, map[string]any{"swap-mb": &res.SwapMB, "storage": &res.Storage, "backup-storage": &res.BackupStorage})
			if len(patch) == 0 {
				return errors.New("set-resources: name a setting to change (--swap-mb, --storage, --backup-storage)")
			}
			var r resourceSettings
			if err := e.call("PATCH", "/api/v1/settings/resources", patch, &r); err != nil {
				return err
			}
			return showResources(r)
		},
	}
	setResources.Flags().IntVar(&res.SwapMB, "swap-mb", 0, "swap of new containers, MiB (0-65536; the cluster's default is 512)")
	setResources.Flags().StringVar(&res.Storage, "storage", "", "Proxmox storage of new containers' root disks, with content rootdir on a node (default local-lvm)")
	setResources.Flags().StringVar(&res.BackupStorage, "backup-storage", "", "Proxmox storage backups are written to, with content backup on a node (default local)")
	cmd.AddCommand(get, set, resources, setResources, quotasCmd(e), oidcCmd(e), registryCmd(e), placementCmd(e), backupSettingsCmd(e))
	return cmd
}
