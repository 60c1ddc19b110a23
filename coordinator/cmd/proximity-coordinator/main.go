// Package main is proximity-coordinator: a coordinator server, and keygen
// for a new cluster's key. The development default (one server with
// simulated nodes) is proximity-dev, a binary of its own, so this one links
// neither the simulator nor the agent.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/server"
	"github.com/proximity-ve/proximity/internal/buildinfo"
	"github.com/proximity-ve/proximity/internal/config"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit).
var (
	version = "dev"
	commit  string
)

func main() {
	root := &cobra.Command{
		Use:           "proximity-coordinator",
		Short:         "Proximity coordinator: the registry, the operator API and the work queue",
		Version:       buildinfo.String(version, commit),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd(), keygenCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "proximity-coordinator:", err)
		os.Exit(1)
	}
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(os.Getenv("PROXIMITY_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// EnvPrefix is the prefix of the environment variables that override
// the server's settings (PROXIMITY_COORDINATOR_NODE_ID, ...).
const EnvPrefix = "PROXIMITY_COORDINATOR"

func serverCmd() *cobra.Command {
	var cfg server.Config
	var configFile string
	timing := cluster.DefaultTiming()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one coordinator server (alone, or one of a 3 or 5 server cluster)",
		Args:  cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return config.Apply(cmd.Flags(), configFile, EnvPrefix, os.Getenv)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.SessionTTL < time.Minute || cfg.SessionTTL > 30*24*time.Hour {
				return fmt.Errorf("--session-ttl: %s outside 1m to 720h", cfg.SessionTTL)
			}
			if cfg.CatalogRefresh != 0 && (cfg.CatalogRefresh < 5*time.Minute || cfg.CatalogRefresh > 30*24*time.Hour) {
				return fmt.Errorf("--catalog-refresh: %s must be 0 (off) or within 5m to 720h", cfg.CatalogRefresh)
			}
			if timing.SnapshotThreshold < 16 {
				return fmt.Errorf("--raft-snapshot-threshold: %d is under 16", timing.SnapshotThreshold)
			}
			if timing.TrailingLogs < 16 {
				return fmt.Errorf("--raft-trailing-logs: %d is under 16", timing.TrailingLogs)
			}
			if timing.SnapshotInterval < time.Second {
				return fmt.Errorf("--raft-snapshot-interval: %s is under 1s", timing.SnapshotInterval)
			}
			cfg.Logger = logger()
			cfg.Timing = timing
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NodeID, "node-id", "", "this server's unique ID (required)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for Raft state, snapshots and the admin token (required)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "", "host:port of the operator API (required)")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", "", "host:port of the agent gRPC service (required)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "", "host:port for Raft traffic, reachable by the other servers (required)")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", "", "host:port for gossip discovery, reachable by the other servers (required)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many servers are seen (3 or 5)")
	f.StringArrayVar(&cfg.Join, "join", nil, "gossip address of a server to join (repeatable)")
	f.StringVar(&cfg.ClusterKeyFile, "cluster-key-file", "", "file of the cluster key every server shares (from `proximity-coordinator keygen`; required)")
	f.StringArrayVar(&cfg.TLSSANs, "tls-san", nil, "extra DNS name or IP address for the API certificate (repeatable)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "the API's certificate (PEM) instead of one from the cluster CA; re-read on SIGHUP")
	f.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "the key of --tls-cert-file (PEM)")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", 12*time.Hour, "how long a login's session lasts (1m to 30 days)")
	f.StringVar(&cfg.CatalogDir, "catalog-dir", "", "directory of *.yaml files the builtin catalog source reads, at the cluster's first start and on catalog reload (default: the starter catalog built in)")
	f.DurationVar(&cfg.CatalogRefresh, "catalog-refresh", 6*time.Hour, "how often the leader fetches every catalog source: 0 (only on proximityctl catalog reload) or 5m to 720h")
	// Raft's snapshots (Consul's raft_snapshot_threshold, _interval and
	// raft_trailing_logs): every interval or so a server writes a snapshot
	// once threshold entries were applied since its last, then keeps only
	// trailing entries before it; a follower further behind is sent the
	// snapshot. Any value is safe; low ones cost disk writes.
	f.Uint64Var(&timing.SnapshotThreshold, "raft-snapshot-threshold", timing.SnapshotThreshold, "log entries applied since the last snapshot before a server writes another (at least 16)")
	f.DurationVar(&timing.SnapshotInterval, "raft-snapshot-interval", timing.SnapshotInterval, "how often a server checks whether to write a snapshot (at least 1s; each check waits between this and twice this)")
	f.Uint64Var(&timing.TrailingLogs, "raft-trailing-logs", timing.TrailingLogs, "log entries kept before a snapshot for followers that are behind (at least 16)")
	f.StringVar(&configFile, "config", "", "YAML file of settings named like these flags (flags and "+EnvPrefix+"_* variables win)")
	for _, name := range []string{"node-id", "data-dir", "http-addr", "grpc-addr", "raft-addr", "gossip-addr", "cluster-key-file"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func keygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new cluster key (mode 0600) for every server of a new cluster to share",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out: required")
			}
			k, err := cluster.WriteNewKeyFile(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote cluster key %s to %s\n", k.ID(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (must not exist)")
	return cmd
}

// run serves until interrupted; SIGHUP reloads the cluster keys and the
// API certificate.
func run(parent context.Context, cfg server.Config) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("coordinator started", "node", cfg.NodeID, "api", srv.URL(), "data_dir", cfg.DataDir)
	return serve(ctx, cfg, srv)
}

// serve waits for the end of ctx, reloading on SIGHUP, then shuts srv
// down.
func serve(ctx context.Context, cfg server.Config, srv *server.Server) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := srv.Reload(); err != nil {
				cfg.Logger.Error("reload", "err", err)
			} else {
				cfg.Logger.Info("reloaded the cluster keys and the API certificate")
			}
		}
	}()
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
