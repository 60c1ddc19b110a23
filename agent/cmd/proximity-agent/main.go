// Package main is proximity-agent, the Proximity node agent.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/internal/validate"
)

type config struct {
	node, coordinator, joinToken, dataDir string
	simulate                              bool
}

func main() {
	var cfg config
	cmd := &cobra.Command{
		Use:           "proximity-agent --node NAME --coordinator H:P --join-token TOKEN --data-dir DIR",
		Short:         "Proximity node agent: does the Proxmox work on this node",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			return errors.New("this build has no agent protocol yet: it cannot join a coordinator")
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.node, "node", "", "this Proxmox node's name (required)")
	f.StringVar(&cfg.coordinator, "coordinator", "", "host:port of a coordinator's gRPC service (required)")
	f.StringVar(&cfg.joinToken, "join-token", "", "single-use join token from POST /api/v1/join-tokens (first start only)")
	f.StringVar(&cfg.dataDir, "data-dir", "", "directory for the node certificate and task state (required)")
	f.BoolVar(&cfg.simulate, "simulate", false, "run against a simulated Proxmox node instead of this host")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "proximity-agent:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	var errs []error
	if err := validate.NodeName("--node", c.node); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.coordinator); err != nil {
		errs = append(errs, fmt.Errorf("--coordinator: %q is not host:port", c.coordinator))
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("--data-dir: required"))
	}
	return errors.Join(errs...)
}
