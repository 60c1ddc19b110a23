// Package simnode runs a simulated Proxmox node for proximity-dev, tests and
// the agent built with the simulate tag: the simulator's state in a
// directory, its API on loopback, and the calling binary linked as pct,
// vzdump and pveam, driven by the agent's real adapter. No production
// binary links it.
package simnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// Node is a simulated Proxmox node: its state in <dir>/pvesim, its API
// served on loopback, and this very binary linked as pct, vzdump and pveam
// (the binary must call pvesim.RunAsTool first thing). The runtime is the
// real adapter.
type Node struct {
	Store   *pvesim.Store
	Server  *pvesim.Server
	Runtime *pve.Local
}

// Start starts the simulated node named node under dir.
func Start(dir, node string) (*Node, error) {
	simDir := filepath.Join(dir, "pvesim")
	st, err := pvesim.Open(simDir, node)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(simDir, "state.json")); os.IsNotExist(err) {
		if err := st.Init(); err != nil {
			return nil, err
		}
	}
	const tokenID, secret = "proximity@pve!agent", "simulated-secret"
	srv, err := pvesim.Serve(st, "127.0.0.1:0", tokenID+"="+secret)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		srv.Close()
		return nil, err
	}
	bin := filepath.Join(dir, "pvesim-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		srv.Close()
		return nil, err
	}
	for _, t := range pvesim.Tools {
		link := filepath.Join(bin, t)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			srv.Close()
			return nil, fmt.Errorf("link %s: %w", t, err)
		}
	}
	rt, err := pve.NewLocal(pve.Options{
		Node: node, APIURL: srv.URL(), TokenID: tokenID, Secret: secret, CAFile: srv.CertPath,
		BinDir: bin, Env: []string{"PVESIM_DIR=" + simDir, "PVESIM_NODE=" + node, toolRace()}, WorkDir: dir,
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &Node{Store: st, Server: srv, Runtime: rt}, nil
}

// toolRace is the GORACE of the tools' processes. A binary built with
// -race sleeps a second when it exits (the race runtime's atexit_sleep_ms,
// which gives other threads time to report); every pct, vzdump, pveam or
// nft call is such an exit when the calling binary is a race-enabled test,
// so the tools skip it. A race the tool finds is still reported, on the
// stderr the adapter reads, and fails the call with exit status 66.
func toolRace() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// Close stops the simulated node's API.
func (s *Node) Close() error { return s.Server.Close() }
