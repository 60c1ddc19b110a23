// Package main is proximity-coordinator. It runs a coordinator server, or the
// embedded default for development (`dev`).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/server"
	"github.com/proximity-ve/proximity/internal/buildinfo"
	"github.com/proximity-ve/proximity/internal/config"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit).
var (
	version = "dev"
	commit  string
)

func main() {
	// dev mode's simulated nodes run this binary as pct, vzdump and pveam.
	pvesim.RunAsTool()
	root := &cobra.Command{
		Use:           "proximity-coordinator",
		Short:         "Proximity coordinator: the registry, the operator API and the work queue",
		Version:       buildinfo.String(version, commit),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd(), devCmd(), keygenCmd())
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
			cfg.Logger = logger()
			cfg.Timing = cluster.DefaultTiming()
			return run(cmd.Context(), cfg, -1)
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
	f.StringVar(&configFile, "config", "", "YAML file of settings named like these flags (flags and "+EnvPrefix+"_* variables win)")
	for _, name := range []string{"node-id", "data-dir", "http-addr", "grpc-addr", "raft-addr", "gossip-addr", "cluster-key-file"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func devCmd() *cobra.Command {
	var httpAddr, dataDir, catalogDir string
	var nodes int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded default: one coordinator and simulated Proxmox nodes on loopback",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(httpAddr)
			if err != nil {
				return fmt.Errorf("--http-addr: %w", err)
			}
			if dataDir == "" {
				// A data directory of its own lives as long as this
				// process; one the operator named is kept.
				if dataDir, err = os.MkdirTemp("", "proximity-dev-"); err != nil {
					return err
				}
				defer func() {
					if rerr := os.RemoveAll(dataDir); rerr != nil {
						fmt.Fprintln(os.Stderr, "proximity-coordinator: remove the temporary data directory:", rerr)
					} else {
						fmt.Printf("Removed the temporary data directory %s (give --data-dir to keep one).\n", dataDir)
					}
				}()
			}
			ports, err := freePorts(host, 3)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			keyFile, err := devKey(dataDir)
			if err != nil {
				return err
			}
			cfg := server.Config{
				NodeID: "dev", DataDir: dataDir, HTTPAddr: httpAddr,
				GRPCAddr:       net.JoinHostPort(host, strconv.Itoa(ports[0])),
				RaftAddr:       net.JoinHostPort(host, strconv.Itoa(ports[1])),
				GossipAddr:     net.JoinHostPort(host, strconv.Itoa(ports[2])),
				ClusterKeyFile: keyFile, CatalogDir: catalogDir,
				Logger: logger(), Timing: cluster.DefaultTiming(),
			}
			cfg.Timing.LocalGossip = true
			if nodes < 0 || nodes > 64 {
				return fmt.Errorf("--nodes: %d outside 0-64", nodes)
			}
			return run(cmd.Context(), cfg, nodes)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:7070", "host:port of the operator API")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory, kept on exit (default: a new temporary directory, removed on exit)")
	cmd.Flags().IntVar(&nodes, "nodes", 3, "simulated Proxmox nodes, each with its own in-process agent")
	cmd.Flags().StringVar(&catalogDir, "catalog-dir", "", "directory of *.yaml files the builtin catalog source reads (default: the starter catalog built in)")
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

// devKey is dev mode's own cluster key, kept in its data directory.
func devKey(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "cluster.key")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if _, err := cluster.WriteNewKeyFile(p); err != nil {
		return "", err
	}
	return p, nil
}

// freePorts finds n free TCP ports on host. Raft and gossip addresses are
// stored in the Raft configuration, so dev mode picks them once per data
// directory; it keeps them in a file there so a restart reuses them.
func freePorts(host string, n int) ([]int, error) {
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// run serves until interrupted. devNodes < 0 is server mode; otherwise it
// is dev mode with that many simulated nodes.
func run(parent context.Context, cfg server.Config, devNodes int) error {
	dev := devNodes >= 0
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dev {
		if err := reuseDevAddrs(&cfg); err != nil {
			return err
		}
	}
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("coordinator started", "node", cfg.NodeID, "api", srv.URL(), "data_dir", cfg.DataDir)
	if dev {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		token, err := srv.WaitAdminToken(wctx)
		if err == nil {
			_, err = srv.WaitCACert(wctx)
		}
		var adminName, adminPassword string
		if err == nil {
			adminName, adminPassword, err = srv.EnsureDevPassword(wctx)
		}
		cancel()
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		stopNodes, err := startDevNodes(ctx, srv, cfg, devNodes)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stopNodes()
		fmt.Printf("Proximity is running with %d simulated Proxmox node(s).\n  Dashboard:   %s/ (sign in with the admin's name and password; the browser will ask you to trust the CA below)\n"+
			"  API:         %s\n  CA:          %s\n  Admin:       %s / %s\n  Admin token: %s\n  Data dir:    %s\n\n"+
			"  export PROXIMITY_ADDR=%s PROXIMITY_CACERT=%s PROXIMITY_TOKEN=%s\n\nPress Ctrl-C to stop.\n",
			devNodes, srv.URL(), srv.URL(), srv.CACertPath(), adminName, adminPassword, token, cfg.DataDir, srv.URL(), srv.CACertPath(), token)
	}
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

// reuseDevAddrs keeps dev mode's Raft and gossip addresses stable across
// restarts with the same data directory.
func reuseDevAddrs(cfg *server.Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	p := cfg.DataDir + "/dev-addrs"
	if b, err := os.ReadFile(p); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 3 {
			cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = f[0], f[1], f[2]
			return nil
		}
	}
	return os.WriteFile(p, []byte(cfg.GRPCAddr+" "+cfg.RaftAddr+" "+cfg.GossipAddr+"\n"), 0o600)
}
