// Package main is proximity-dev, Proximity's development default: one
// coordinator and simulated Proxmox nodes on loopback, each with its agent
// in this process, and the web dashboard. `make run` runs it. It is built
// into bin/ by `make build` and never packaged: the production binaries
// link neither the simulator nor the agent (deptest_test.go).
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
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit).
var (
	version = "dev"
	commit  string
)

func main() {
	// The simulated nodes run this binary as pct, vzdump and pveam.
	pvesim.RunAsTool()
	if err := devCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "proximity-dev:", err)
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

func devCmd() *cobra.Command {
	var httpAddr, dataDir, catalogDir string
	var nodes int
	cmd := &cobra.Command{
		Use:           "proximity-dev",
		Short:         "Run Proximity's development default: one coordinator and simulated Proxmox nodes on loopback, with the web dashboard",
		Args:          cobra.NoArgs,
		Version:       buildinfo.String(version, commit),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(httpAddr)
			if err != nil {
				return fmt.Errorf("--http-addr: %w", err)
			}
			if nodes < 0 || nodes > 64 {
				return fmt.Errorf("--nodes: %d outside 0-64", nodes)
			}
			if dataDir == "" {
				// A data directory of its own lives as long as this
				// process; one the operator named is kept.
				if dataDir, err = os.MkdirTemp("", "proximity-dev-"); err != nil {
					return err
				}
				defer func() {
					if rerr := os.RemoveAll(dataDir); rerr != nil {
						fmt.Fprintln(os.Stderr, "proximity-dev: remove the temporary data directory:", rerr)
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
			return run(cmd.Context(), cfg, nodes)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:7070", "host:port of the operator API and the dashboard")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory, kept on exit (default: a new temporary directory, removed on exit)")
	cmd.Flags().IntVar(&nodes, "nodes", 3, "simulated Proxmox nodes, each with its own in-process agent")
	cmd.Flags().StringVar(&catalogDir, "catalog-dir", "", "directory of *.yaml files the builtin catalog source reads (default: the starter catalog built in)")
	return cmd
}

// devKey is the development server's own cluster key, kept in its data
// directory.
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
// stored in the Raft configuration, so they are picked once per data
// directory and kept in a file there that a restart reuses
// (reuseDevAddrs).
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

// run serves until interrupted, with n simulated nodes.
func run(parent context.Context, cfg server.Config, n int) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := reuseDevAddrs(&cfg); err != nil {
		return err
	}
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("coordinator started", "node", cfg.NodeID, "api", srv.URL(), "data_dir", cfg.DataDir)
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
	stopNodes, err := startDevNodes(ctx, srv, cfg, n)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	defer stopNodes()
	fmt.Printf("Proximity is running with %d simulated Proxmox node(s).\n  Dashboard:   %s/ (sign in with the admin's name and password; the browser will ask you to trust the CA below)\n"+
		"  API:         %s\n  CA:          %s\n  Admin:       %s / %s\n  Admin token: %s\n  Data dir:    %s\n\n"+
		"  export PROXIMITY_ADDR=%s PROXIMITY_CACERT=%s PROXIMITY_TOKEN=%s\n\nPress Ctrl-C to stop.\n",
		n, srv.URL(), srv.URL(), srv.CACertPath(), adminName, adminPassword, token, cfg.DataDir, srv.URL(), srv.CACertPath(), token)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := srv.Reload(); err != nil {
				cfg.Logger.Error("reload", "err", err)
			}
		}
	}()
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// reuseDevAddrs keeps the Raft and gossip addresses stable across restarts
// with the same data directory.
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
