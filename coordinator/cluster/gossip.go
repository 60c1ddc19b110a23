package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// meta is what a server announces over gossip.
type meta struct {
	ID     string `json:"id"`
	Raft   string `json:"raft"`
	HTTP   string `json:"http"`
	GRPC   string `json:"grpc,omitempty"`
	Gossip string `json:"gossip"`
	Expect int    `json:"expect,omitempty"`
	Boot   string `json:"boot"`
	// Member is true once the server belongs to a Raft cluster (it has
	// state on disk or bootstrapped); servers never bootstrap with one.
	Member bool `json:"member,omitempty"`
	// Keys are the fingerprints of the server's cluster keys, primary
	// first, so a rotation's progress can be read on any server.
	Keys []string `json:"keys,omitempty"`
	// Protocol is the newest protocol the server speaks
	// (fsm.ProtocolVersion); servers of the releases before it was
	// announced send none and speak fsm.BaseProtocol.
	Protocol int `json:"protocol,omitempty"`
}

type metaDelegate struct {
	mu sync.Mutex
	m  meta
	c  *Cluster
}

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := json.Marshal(d.m)
	if err != nil || len(b) > limit {
		// checkConfig and ReloadKeys refuse a meta that does not fit
		// (fits), so this is not reached.
		return nil
	}
	return b
}

// fits reports why the meta cannot be announced: memberlist carries at
// most memberlist.MetaMaxSize bytes of it, and a server whose meta is
// longer would announce none (no Raft address, no keys).
func (m meta) fits() error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("this server's gossip announcement (its ID, addresses and %d key fingerprints) is %d bytes, over the %d gossip carries: shorten --node-id or the addresses, or remove retired keys from the key file",
			len(m.Keys), len(b), memberlist.MetaMaxSize)
	}
	return nil
}

// withKeys is the meta with other key fingerprints.
func (d *metaDelegate) withKeys(ids []string) meta {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.m
	m.Keys = ids
	return m
}

func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// The event callbacks run while memberlist holds its node lock, which is
// the only time a *memberlist.Node may be read: the table of live servers
// is kept here from them, never from Members().
func (d *metaDelegate) NotifyJoin(n *memberlist.Node)   { d.c.track(n, true) }
func (d *metaDelegate) NotifyLeave(n *memberlist.Node)  { d.c.track(n, false) }
func (d *metaDelegate) NotifyUpdate(n *memberlist.Node) { d.c.track(n, true) }

func (d *metaDelegate) setKeys(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m.Keys = ids
}

func (d *metaDelegate) setMember() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m.Member {
		return false
	}
	d.m.Member = true
	return true
}

func (c *Cluster) openGossip() error {
	host, portStr, _ := net.SplitHostPort(c.cfg.GossipAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--gossip-addr: %w", err)
	}
	var mc *memberlist.Config
	if c.cfg.Timing.LocalGossip {
		mc = memberlist.DefaultLocalConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = c.cfg.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.LogOutput = &levelFilter{w: c.cfg.LogOutput}
	hasState, err := c.hasState()
	if err != nil {
		return err
	}
	c.meta = &metaDelegate{c: c, m: meta{
		ID: c.cfg.NodeID, Raft: c.cfg.RaftAddr, HTTP: c.cfg.HTTPAddr, GRPC: c.cfg.GRPCAddr,
		Gossip: c.cfg.GossipAddr, Expect: c.cfg.BootstrapExpect, Boot: c.bootID, Member: hasState,
		Keys: c.keys.Load().IDs(), Protocol: fsm.ProtocolVersion,
	}}
	mc.Delegate = c.meta
	mc.Events = c.meta
	// Every gossip message, UDP and TCP, is encrypted and authenticated
	// under the cluster key; messages under no key or another are dropped.
	ks := *c.keys.Load()
	var gk [][]byte
	for _, k := range ks {
		gk = append(gk, k.gossipKey())
	}
	kr, err := memberlist.NewKeyring(gk, gk[0])
	if err != nil {
		return fmt.Errorf("gossip keyring: %w", err)
	}
	c.gossKey = kr
	mc.Keyring = kr
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("gossip on %s: %w", c.cfg.GossipAddr, err)
	}
	c.ml = ml
	return nil
}

// markMember announces that this server belongs to a Raft cluster. The
// announcement takes a few gossip rounds to spread, and memberlist waits
// for them (up to its timeout) even once it is shut down: the wait runs on
// its own, so that a server stopping right after it joined does not wait
// for it.
func (c *Cluster) markMember() {
	if !c.meta.setMember() {
		return
	}
	go func() {
		if err := c.ml.UpdateNode(5 * time.Second); err != nil {
			select {
			case <-c.stop:
			default:
				c.log.Warn("announce membership", "err", err)
			}
		}
	}()
}

func (c *Cluster) membershipChanged() {
	select {
	case c.events <- struct{}{}:
	default:
	}
}

// track records a server's announcement as it joins or changes, and
// forgets it when it leaves or fails.
func (c *Cluster) track(n *memberlist.Node, alive bool) {
	var m meta
	ok := alive && json.Unmarshal(n.Meta, &m) == nil && m.ID == n.Name && m.Raft != ""
	c.liveMu.Lock()
	if ok {
		c.live[n.Name] = m
		// The last protocol a server announced outlives its leaving: a
		// server that is down still counts with it (protocol.go).
		c.protocols[n.Name] = max(m.Protocol, fsm.BaseProtocol)
	} else {
		delete(c.live, n.Name)
	}
	c.liveMu.Unlock()
	c.membershipChanged()
}

// members returns the live servers seen over gossip, sorted by ID.
func (c *Cluster) members() []meta {
	c.liveMu.Lock()
	out := make([]meta, 0, len(c.live))
	for _, m := range c.live {
		out = append(out, m)
	}
	c.liveMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// memberMeta returns a live server's announcement.
func (c *Cluster) memberMeta(id string) (meta, bool) {
	for _, m := range c.members() {
		if m.ID == id {
			return m, true
		}
	}
	return meta{}, false
}

func (c *Cluster) peersFile() string { return filepath.Join(c.cfg.DataDir, "gossip-peers.json") }

// savePeers remembers the gossip addresses of the servers seen, so that a
// restart can find the cluster without --join.
func (c *Cluster) savePeers() {
	var addrs []string
	for _, m := range c.members() {
		if m.ID != c.cfg.NodeID {
			addrs = append(addrs, m.Gossip)
		}
	}
	if len(addrs) == 0 {
		return
	}
	b, _ := json.Marshal(addrs)
	old, _ := os.ReadFile(c.peersFile())
	if bytes.Equal(old, b) {
		return
	}
	if err := writeFileAtomic(c.peersFile(), b, 0o600); err != nil {
		c.log.Warn("remember gossip peers", "err", err)
	}
}

func (c *Cluster) joinCandidates() []string {
	seen := map[string]bool{c.cfg.GossipAddr: true}
	var out []string
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, a := range c.cfg.Join {
		add(a)
	}
	var saved []string
	if b, err := os.ReadFile(c.peersFile()); err == nil {
		if err := json.Unmarshal(b, &saved); err != nil {
			c.log.Warn("ignoring unreadable gossip peers file", "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("read gossip peers", "err", err)
	}
	for _, a := range saved {
		add(a)
	}
	c.fsm.Read(func(s *fsmState) {
		for _, sv := range s.ListServers() {
			if sv.GossipAddr != "" {
				add(sv.GossipAddr)
			}
		}
	})
	return out
}

// joinLoop joins the gossip pool and rejoins whenever this server finds
// itself alone while it knows of others, with capped backoff. Once in the
// pool it also joins, more slowly, every server of the configuration that
// is not among the live members: a server that restarts is found again by
// the first peer that gossips to it, and would otherwise learn the rest
// only at the next full state exchange (30 s), announcements included.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	backoff := 200 * time.Millisecond
	for {
		alone := c.ml.NumMembers() <= 1
		cands := c.missingServers()
		if alone {
			cands = c.joinCandidates()
		}
		switch {
		case len(cands) == 0:
			backoff = time.Second
		default:
			if n, err := c.ml.Join(cands); err != nil && n == 0 {
				c.log.Debug("gossip join", "peers", cands, "err", err)
				backoff = min(backoff*2, 5*time.Second)
			} else if alone {
				backoff = 200 * time.Millisecond
			} else {
				backoff = time.Second // a missing one at most once a second
			}
		}
		select {
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
	}
}

// missingServers are the gossip addresses of the configuration's servers
// (as the state machine records them) that this server has not seen alive
// over gossip (track keeps them; memberlist's own nodes change under it).
func (c *Cluster) missingServers() []string {
	live := map[string]bool{c.cfg.NodeID: true}
	for _, m := range c.members() {
		live[m.ID] = true
	}
	var out []string
	c.fsm.Read(func(s *fsmState) {
		for _, sv := range s.ListServers() {
			if sv.GossipAddr != "" && !live[sv.ID] {
				out = append(out, sv.GossipAddr)
			}
		}
	})
	return out
}

// levelFilter passes on only memberlist's warnings and errors.
type levelFilter struct{ w io.Writer }

func (l *levelFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("[WARN]")) || bytes.Contains(p, []byte("[ERR]")) {
		return l.w.Write(p)
	}
	return len(p), nil
}
