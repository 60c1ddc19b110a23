package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/agent"
	"github.com/proximity-ve/proximity/agent/simnode"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/server"
)

// startDevNodes runs n agents on simulated Proxmox nodes pve1..pveN in this
// process, each with its state under <data-dir>/nodes/<name>. A node that
// joined in an earlier run keeps its certificate and needs no token. It
// returns once every node is ready, with a function that stops them.
func startDevNodes(ctx context.Context, srv *server.Server, cfg server.Config, n int) (func(), error) {
	actx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sims []*simnode.Node
	stop := func() {
		cancel()
		wg.Wait()
		for _, s := range sims {
			s.Close()
		}
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("pve%d", i)
		dir := filepath.Join(cfg.DataDir, "nodes", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			stop()
			return nil, err
		}
		token := ""
		if _, err := os.Stat(filepath.Join(dir, "node.crt")); os.IsNotExist(err) {
			tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
			token, err = srv.NewJoinToken(tctx, name, 10*time.Minute)
			tcancel()
			if err != nil {
				stop()
				return nil, fmt.Errorf("join token for %s: %w", name, err)
			}
		}
		sim, err := simnode.Start(dir, name)
		if err != nil {
			stop()
			return nil, fmt.Errorf("simulated node %s: %w", name, err)
		}
		sims = append(sims, sim)
		a, err := agent.New(agent.Config{Node: name, Coordinators: []string{srv.GRPCAddr()}, JoinToken: token, DataDir: dir,
			Runtime: sim.Runtime, Version: version, Logger: cfg.Logger.With("agent", name)})
		if err != nil {
			stop()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(actx); err != nil {
				cfg.Logger.Error("agent stopped", "node", name, "err", err)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := 0
		srv.Cluster().FSM().Read(func(st *fsm.State) {
			for _, node := range st.ListNodes() {
				if node.Status == fsm.NodeReady {
					ready++
				}
			}
		})
		if ready >= n {
			return stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("only %d of %d simulated nodes became ready", ready, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
