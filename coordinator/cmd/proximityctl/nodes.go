package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

type node struct {
	Name          string  `json:"name"`
	Status        string  `json:"status"`
	LastHeartbeat *string `json:"last_heartbeat"`
	AgentVersion  string  `json:"agent_version"`
	Capacity      struct {
		CPUs      int    `json:"cpus"`
		MemTotal  uint64 `json:"mem_total"`
		DiskTotal uint64 `json:"disk_total"`
	} `json:"capacity"`
	MemFree    uint64 `json:"mem_free"`
	DiskFree   uint64 `json:"disk_free"`
	Containers int    `json:"containers"`
}

func nodesCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "nodes", Short: "List Proxmox nodes, their status and capacity", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []node `json:"items"`
				Total int    `json:"total"`
			}
			if err := e.call("GET", "/api/v1/nodes?per_page=100", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, n := range out.Items {
				hb := "-"
				if n.LastHeartbeat != nil {
					if t, err := time.Parse(time.RFC3339Nano, *n.LastHeartbeat); err == nil {
						hb = shortDuration(time.Since(t)) + " ago"
					}
				}
				rows = append(rows, []string{n.Name, n.Status, hb, strconv.Itoa(n.Capacity.CPUs),
					bytesIEC(float64(n.MemFree)) + " / " + bytesIEC(float64(n.Capacity.MemTotal)), bytesIEC(float64(n.DiskFree)) + " / " + bytesIEC(float64(n.Capacity.DiskTotal)),
					strconv.Itoa(n.Containers), dash(n.AgentVersion)})
			}
			return e.print(out, []string{"NAME", "STATUS", "HEARTBEAT", "CPUS", "MEM FREE", "DISK FREE", "CTS", "AGENT"}, rows)
		},
	}
}

func joinTokensCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "join-tokens", Short: "Create single-use tokens that let a node's agent join"}
	var nodeName string
	var ttl time.Duration
	create := &cobra.Command{
		Use: "create", Short: "Create a join token (shown once)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in := map[string]any{"ttl_seconds": int(ttl / time.Second)}
			if nodeName != "" {
				in["node"] = nodeName
			}
			var out struct {
				ID        string `json:"id"`
				Token     string `json:"token"`
				ExpiresAt string `json:"expires_at"`
				Node      string `json:"node"`
			}
			if err := e.call("POST", "/api/v1/join-tokens", in, &out); err != nil {
				return err
			}
			return e.print(out, []string{"ID", "TOKEN", "EXPIRES", "NODE"}, [][]string{{out.ID, out.Token, out.ExpiresAt, dash(out.Node)}})
		},
	}
	create.Flags().StringVar(&nodeName, "node", "", "the only node that may use the token (default: any)")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid (1m to 168h)")
	cmd.AddCommand(create)
	return cmd
}

func nodeRemoveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a node from Proximity; its agent's certificate is refused from then on",
		Long: "Removes an enrolled node. The node must hold nothing: delete its apps (and their\n" +
			"backups) first. Its agent is refused from then on; to bring the node back, give it\n" +
			"a new join token. The containers on the node are not touched.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.call("DELETE", "/api/v1/nodes/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "removed node %s\n", args[0])
			return nil
		},
	}
}
