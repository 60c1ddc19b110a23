package cluster

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

func (c *Cluster) hasState() (bool, error) {
	ok, err := raft.HasExistingState(c.store, c.store, c.snaps)
	if err != nil {
		return false, fmt.Errorf("read raft state: %w", err)
	}
	return ok, nil
}

// bootstrap forms a new cluster when this server's configuration says so;
// see the package comment for the rules.
func (c *Cluster) bootstrap() {
	defer c.wg.Done()
	has, err := c.hasState()
	if err != nil {
		c.log.Error("bootstrap", "err", err)
		return
	}
	if has {
		c.markMember()
		return
	}
	if c.cfg.BootstrapExpect == 0 {
		if len(c.cfg.Join) == 0 {
			c.bootstrapWith([]meta{c.meta.m})
		}
		// Otherwise wait for the leader to add this server.
		c.waitMember()
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	warned := time.Time{}
	for {
		select {
		case <-c.stop:
			return
		case <-c.events:
		case <-tick.C:
		}
		if c.inConfiguration() {
			c.markMember()
			return
		}
		var ready []meta
		joined := false
		for _, m := range c.members() {
			if m.Member {
				joined = true
			}
			if m.Expect == c.cfg.BootstrapExpect {
				ready = append(ready, m)
			} else if m.Expect != 0 && time.Since(warned) > 10*time.Second {
				warned = time.Now()
				c.log.Error("servers disagree on --bootstrap-expect", "peer", m.ID, "peer_expect", m.Expect, "expect", c.cfg.BootstrapExpect)
			}
		}
		if joined {
			// A cluster exists already: its leader adds this server.
			c.waitMember()
			return
		}
		if len(ready) < c.cfg.BootstrapExpect {
			continue
		}
		if len(ready) > c.cfg.BootstrapExpect {
			if time.Since(warned) > 10*time.Second {
				warned = time.Now()
				c.log.Error("more servers than --bootstrap-expect; not bootstrapping", "seen", len(ready), "expect", c.cfg.BootstrapExpect)
			}
			continue
		}
		c.bootstrapWith(ready)
		return
	}
}

func (c *Cluster) bootstrapWith(servers []meta) {
	var cfg raft.Configuration
	for _, m := range servers {
		cfg.Servers = append(cfg.Servers, raft.Server{
			ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Raft), Suffrage: raft.Voter,
		})
	}
	if err := c.raft.BootstrapCluster(cfg).Error(); err != nil && err != raft.ErrCantBootstrap {
		c.log.Error("bootstrap raft", "err", err)
		return
	}
	c.log.Info("bootstrapped cluster", "servers", len(servers))
	c.markMember()
}

// waitMember marks this server as a member once the leader has added it.
// Meanwhile it syncs its gossip state with every member it knows of every
// few seconds: the leader adds only servers its own gossip has seen, and a
// server that joined the pool while it was still forming may otherwise
// reach the leader only at the next push-pull (30 s on a LAN).
func (c *Cluster) waitMember() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var synced time.Time
	for {
		if c.inConfiguration() {
			c.markMember()
			return
		}
		if time.Since(synced) > 2*time.Second {
			synced = time.Now()
			var addrs []string
			for _, m := range c.members() {
				if m.Member && m.ID != c.cfg.NodeID {
					addrs = append(addrs, m.Gossip)
				}
			}
			if len(addrs) > 0 {
				if _, err := c.ml.Join(addrs); err != nil {
					c.log.Debug("gossip sync with members", "peers", addrs, "err", err)
				}
			}
		}
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

func (c *Cluster) inConfiguration() bool {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == c.cfg.NodeID {
			return true
		}
	}
	return false
}
