// Package main is proximity-agent, the Proximity node agent.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/pvesim"
	"github.com/proximity-ve/proximity/internal/validate"
)

// version is stamped at build time.
var version = "dev"

type config struct {
	node, coordinator, joinToken, dataDir string
	simulate                              bool
}

func main() {
	pvesim.RunAsTool()
	var cfg config
	cmd := &cobra.Command{
		Use:           "proximity-agent --node NAME --coordinator H:P --join-token TOKEN --data-dir DIR",
		Short:         "Proximity node agent: does the Proxmox work on this node",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		RunE: func(*cobra.Command, []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			return run(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.node, "node", "", "this Proxmox node's name (required)")
	f.StringVar(&cfg.coordinator, "coordinator", "", "host:port of a coordinator's gRPC service; several may be given, comma separated (required)")
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
	for _, a := range strings.Split(c.coordinator, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("--coordinator: %q is not host:port", a))
		}
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("--data-dir: required"))
	}
	return errors.Join(errs...)
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(os.Getenv("PROXIMITY_LOG_LEVEL")))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// localRuntime is the adapter for this host: the node's API on loopback
// with the token the package's install step created.
func localRuntime(node, dataDir string) (pve.Runtime, error) {
	id, secret := os.Getenv("PROXIMITY_PVE_TOKEN_ID"), os.Getenv("PROXIMITY_PVE_TOKEN_SECRET")
	if id == "" || secret == "" {
		return nil, errors.New("PROXIMITY_PVE_TOKEN_ID and PROXIMITY_PVE_TOKEN_SECRET must name the agent's Proxmox API token")
	}
	url := os.Getenv("PROXIMITY_PVE_API")
	if url == "" {
		url = "https://127.0.0.1:8006/api2/json"
	}
	ca := os.Getenv("PROXIMITY_PVE_CA")
	if ca == "" {
		ca = "/etc/pve/pve-root-ca.pem"
	}
	return pve.NewLocal(pve.Options{Node: node, APIURL: url, TokenID: id, Secret: secret, CAFile: ca, WorkDir: dataDir})
}

func run(cfg config) error {
	log := logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return err
	}
	var rt pve.Runtime
	if cfg.simulate {
		sim, err := agent.StartSimNode(cfg.dataDir, cfg.node)
		if err != nil {
			return err
		}
		defer sim.Close()
		log.Info("simulated Proxmox node", "api", sim.Server.URL())
		rt = sim.Runtime
	} else {
		var err error
		if rt, err = localRuntime(cfg.node, cfg.dataDir); err != nil {
			return err
		}
	}
	a, err := agent.New(agent.Config{Node: cfg.node, Coordinators: strings.Split(cfg.coordinator, ","), JoinToken: cfg.joinToken,
		DataDir: cfg.dataDir, Runtime: rt, Version: version, Logger: log})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
