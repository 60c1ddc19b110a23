// Package main is proximity-agent, the Proximity node agent.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/internal/buildinfo"
	"github.com/proximity-ve/proximity/internal/config"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/validate"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit).
var (
	version = "dev"
	commit  string
)

// envPrefix is the prefix of the environment variables that override the
// settings (PROXIMITY_AGENT_NODE, ...).
const envPrefix = "PROXIMITY_AGENT"

type settings struct {
	node, coordinator, joinToken, dataDir string
	simulate                              bool
	configFile                            string
	pveAPI, pveCA, pveTokenFile           string
	stopGrace                             time.Duration
	allowPrivileged                       bool
	advertiseAddr                         string
}

func main() {
	pve.RunToolWithUmask()
	var cfg settings
	cmd := &cobra.Command{
		Use:           "proximity-agent --node NAME --coordinator H:P --join-token TOKEN --data-dir DIR",
		Short:         "Proximity node agent: does the Proxmox work on this node",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(version, commit),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return config.Apply(cmd.Flags(), cfg.configFile, envPrefix, os.Getenv)
		},
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
	if simulated != nil {
		f.BoolVar(&cfg.simulate, "simulate", false, "run against a simulated Proxmox node instead of this host (only in a build with -tags simulate)")
	}
	f.StringVar(&cfg.configFile, "config", "", "YAML file of settings named like these flags (flags and "+envPrefix+"_* variables win)")
	f.StringVar(&cfg.pveAPI, "pve-api", "https://127.0.0.1:8006/api2/json", "this node's Proxmox API")
	f.StringVar(&cfg.pveCA, "pve-ca", "/etc/pve/pve-root-ca.pem", "CA certificate of the Proxmox API")
	f.StringVar(&cfg.pveTokenFile, "pve-token-file", "/etc/proximity/pve-token", "file holding the agent's Proxmox API token, USER@REALM!NAME=SECRET")
	f.DurationVar(&cfg.stopGrace, "stop-grace", time.Minute, "on SIGTERM, how long running tasks may take to finish before the agent exits (they go on, and a restarted agent waits for them)")
	f.BoolVar(&cfg.allowPrivileged, "allow-privileged", false, "node policy: let the cluster create privileged containers and run the deploy flow in them (root in a privileged container is root on this node)")
	f.StringVar(&cfg.advertiseAddr, "advertise-addr", "", "the address people reach this node's apps at, an IP address or a DNS name (default: the address this node reaches the coordinator from)")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "proximity-agent:", err)
		os.Exit(1)
	}
}

func (c settings) validate() error {
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
	if c.advertiseAddr != "" {
		if err := validate.HostAddress("--advertise-addr", c.advertiseAddr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(os.Getenv("PROXIMITY_LOG_LEVEL")))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// localRuntime is the adapter for this host: the node's API with the
// token the package's install step created.
func localRuntime(cfg settings) (pve.Runtime, error) {
	b, err := os.ReadFile(cfg.pveTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--pve-token-file: %w (the package creates it when pveum is present)", err)
	}
	id, secret, ok := strings.Cut(strings.TrimSpace(string(b)), "=")
	if !ok || !strings.Contains(id, "!") || secret == "" {
		return nil, fmt.Errorf("--pve-token-file: %s does not hold USER@REALM!NAME=SECRET", cfg.pveTokenFile)
	}
	return pve.NewLocal(pve.Options{Node: cfg.node, APIURL: cfg.pveAPI, TokenID: id, Secret: secret, CAFile: cfg.pveCA, WorkDir: cfg.dataDir, ToolUmask: true})
}

func run(cfg settings) error {
	log := logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return err
	}
	var rt pve.Runtime
	if cfg.simulate {
		sim, stop, err := simulated(cfg.dataDir, cfg.node)
		if err != nil {
			return err
		}
		defer stop()
		rt = sim
	} else {
		var err error
		if rt, err = localRuntime(cfg); err != nil {
			return err
		}
	}
	policy := agent.DefaultPolicy()
	policy.AllowPrivileged, policy.Source = cfg.allowPrivileged, cfg.configFile
	log.Info("node policy", "allow_privileged", policy.AllowPrivileged, "from", cmp.Or(cfg.configFile, "defaults and flags"))
	a, err := agent.New(agent.Config{Node: cfg.node, Coordinators: strings.Split(cfg.coordinator, ","), JoinToken: cfg.joinToken,
		DataDir: cfg.dataDir, Runtime: rt, Version: version, Logger: log, StopGrace: cfg.stopGrace, Policy: policy,
		AdvertiseAddr: cfg.advertiseAddr})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// simulated starts a simulated Proxmox node and answers its runtime; nil
// unless the binary is built with -tags simulate (simulate.go).
var simulated func(dataDir, node string) (pve.Runtime, func(), error)
