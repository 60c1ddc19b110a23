package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

// quota is the wire shape of a quota; 0 is unlimited.
type quota struct {
	MaxApps     int `json:"max_apps"`
	MaxCores    int `json:"max_cores"`
	MaxMemoryMB int `json:"max_memory_mb"`
	MaxDiskGB   int `json:"max_disk_gb"`
}

// limit shows a quota's limit in a table.
func limit(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// quotasCmd shows the default quota, or changes the limits named by its
// flags with a PATCH, so the limits not named keep theirs.
func quotasCmd(e *env) *cobra.Command {
	var in quota
	cmd := &cobra.Command{
		Use:   "quotas [--max-apps N] [--max-cores N] [--max-memory-mb N] [--max-disk-gb N]",
		Short: "Show or change the default quota of users (0 is unlimited)",
		Long: `Show the default quota of users: the limits of every user that has no quota of its own.
With flags, change the limits they name and keep the others; 0 is unlimited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var q quota
			// A merge patch of the limits named: the others keep theirs.
			patch := changed(cmd, map[string]any{"max-apps": &in.MaxApps, "max-cores": &in.MaxCores, "max-memory-mb": &in.MaxMemoryMB, "max-disk-gb": &in.MaxDiskGB})
			method, body := "GET", any(nil)
			if len(patch) > 0 {
				method, body = "PATCH", patch
			}
			if err := e.call(method, "/api/v1/settings/quotas", body, &q); err != nil {
				return err
			}
			return e.print(q, []string{"MAX APPS", "MAX CORES", "MAX MEMORY MB", "MAX DISK GB"},
				[][]string{{limit(q.MaxApps), limit(q.MaxCores), limit(q.MaxMemoryMB), limit(q.MaxDiskGB)}})
		},
	}
	cmd.Flags().IntVar(&in.MaxApps, "max-apps", 0, "apps per user")
	cmd.Flags().IntVar(&in.MaxCores, "max-cores", 0, "CPU cores per user, summed over its apps")
	cmd.Flags().IntVar(&in.MaxMemoryMB, "max-memory-mb", 0, "memory per user in MiB, summed over its apps")
	cmd.Flags().IntVar(&in.MaxDiskGB, "max-disk-gb", 0, "root disk per user in GiB, summed over its apps")
	return cmd
}
