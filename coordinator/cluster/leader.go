package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/problem"
)

type fsmState = fsm.State

// leaderState is the leadership term this server is serving, if any.
type leaderState struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *Cluster) watchLeadership() {
	defer c.wg.Done()
	<-c.stop
	c.lead.mu.Lock()
	if c.lead.cancel != nil {
		c.lead.cancel()
	}
	c.lead.mu.Unlock()
}

// leaderEvent handles a leadership change reported by Raft.
func (c *Cluster) leaderEvent(isLeader bool) {
	ls := &c.lead
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.cancel != nil {
		ls.cancel()
		ls.cancel = nil
	}
	c.leaderReady.Store(false)
	if !isLeader {
		c.log.Info("lost leadership")
		return
	}
	select {
	case <-c.stop:
		return
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	go c.leadTerm(ctx)
}

// leadTerm runs while this server is leader.
func (c *Cluster) leadTerm(ctx context.Context) {
	// A barrier commits an entry of this term, after which the FSM has
	// applied everything committed by earlier leaders: only then are
	// reads and the controllers safe.
	for {
		err := c.raft.Barrier(10 * time.Second).Error()
		if err == nil {
			break
		}
		c.log.Warn("leader barrier", "err", err)
		if ctx.Err() != nil || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	c.leaderReady.Store(true)
	c.log.Info("leading", "term", c.raft.Stats()["term"])
	if c.cfg.OnLeaderReady != nil {
		go c.cfg.OnLeaderReady(ctx, c)
	}
	tick := time.NewTicker(c.cfg.Timing.Reconcile)
	defer tick.Stop()
	for {
		c.reconcile(ctx)
		c.savePeers()
		c.resealOIDC(ctx)
		c.resealSecrets(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.events:
		case <-tick.C:
		}
	}
}

// reconcile brings the Raft configuration and the FSM's server records in
// line with the live servers seen over gossip.
func (c *Cluster) reconcile(ctx context.Context) {
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		c.log.Warn("reconcile: read configuration", "err", err)
		return
	}
	inRaft := map[string]raft.Server{}
	for _, s := range cf.Configuration().Servers {
		inRaft[string(s.ID)] = s
	}
	var tombstoned func(id, boot string) bool
	records := map[string]fsm.Server{}
	c.fsm.Read(func(s *fsm.State) {
		for _, sv := range s.ListServers() {
			records[sv.ID] = sv
		}
		ts := map[string]string{}
		for id, b := range s.Tombstones {
			ts[id] = b
		}
		tombstoned = func(id, boot string) bool { return ts[id] == boot }
	})
	for _, m := range c.members() {
		if ctx.Err() != nil {
			return
		}
		if tombstoned(m.ID, m.Boot) {
			continue
		}
		if rs, ok := inRaft[m.ID]; !ok || string(rs.Address) != m.Raft {
			if ok {
				if err := c.raft.RemoveServer(rs.ID, 0, 10*time.Second).Error(); err != nil {
					c.log.Warn("reconcile: remove stale address", "server", m.ID, "err", err)
					continue
				}
			}
			// A server new to the configuration (or back at a new
			// address) starts as a non-voter; promote makes it a voter
			// once it has proven healthy.
			if err := c.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Raft), 0, 10*time.Second).Error(); err != nil {
				c.log.Warn("reconcile: add non-voter", "server", m.ID, "err", err)
				continue
			}
			c.log.Info("added server as non-voter", "server", m.ID, "raft_addr", m.Raft)
		}
		want := fsm.Server{ID: m.ID, RaftAddr: m.Raft, HTTPAddr: m.HTTP, GRPCAddr: m.GRPC, GossipAddr: m.Gossip, BootID: m.Boot}
		if records[m.ID] != want {
			sum := sha256.Sum256(fmt.Appendf(nil, "%+v", want))
			cmd := fsm.Command{Type: fsm.CmdUpsertServer, RequestID: "server/" + hex.EncodeToString(sum[:12]), UpsertServer: &want}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := c.Propose(pctx, cmd)
			cancel()
			if err == nil {
				err = res.Err()
			}
			if err != nil {
				c.log.Warn("reconcile: record server", "server", m.ID, "err", err)
			}
		}
	}
	if cf := c.raft.GetConfiguration(); cf.Error() == nil {
		c.promote(ctx, cf.Configuration().Servers)
	}
}

// Member is a Raft voter or non-voter as /api/v1/cluster shows it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Suffrage string `json:"suffrage"`
	// Keys are the fingerprints of the member's cluster keys, primary
	// first, as it announces them (empty when it is not seen).
	Keys []string `json:"keys"`
	// Protocol is the newest protocol the member speaks, as this server
	// last heard it (0: not heard from since this server started). A
	// command type is proposed only once every member speaks its protocol.
	Protocol int `json:"protocol"`
}

// Info is the cluster as this server sees it.
type Info struct {
	Self struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"self"`
	Leader struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
	} `json:"leader"`
	Members []Member `json:"members"`
	// SealedBy is the fingerprint of the key the cluster's secrets are
	// sealed with: a rotation may remove the old key once it is the new.
	SealedBy     string `json:"sealed_by"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// StateDigest is the SHA-256 of this server's replicated state at
	// DigestIndex: servers at the same index with different digests have
	// diverged.
	StateDigest string `json:"state_digest"`
	DigestIndex uint64 `json:"digest_index"`
}

// Leader returns the current leader's ID and HTTP address, if known.
func (c *Cluster) Leader() (id, httpAddr string, ok bool) {
	_, lid := c.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	return string(lid), c.httpAddrOf(string(lid)), true
}

func (c *Cluster) httpAddrOf(id string) string {
	if id == c.cfg.NodeID {
		return c.cfg.HTTPAddr
	}
	if m, ok := c.memberMeta(id); ok {
		return m.HTTP
	}
	var addr string
	c.fsm.Read(func(s *fsm.State) {
		if sv, ok := s.Server(id); ok {
			addr = sv.HTTPAddr
		}
	})
	return addr
}

// Info describes the cluster.
func (c *Cluster) Info() (Info, error) {
	var in Info
	in.Self.ID = c.cfg.NodeID
	in.Self.State = stateName(c.raft.State())
	if id, addr, ok := c.Leader(); ok {
		in.Leader.ID, in.Leader.HTTPAddr = id, addr
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return Info{}, problem.Wrap(problem.Unavailable, err, "raft configuration unavailable")
	}
	in.Members = []Member{}
	protocols := c.serverProtocols(cf.Configuration().Servers)
	for i, s := range cf.Configuration().Servers {
		in.Members = append(in.Members, Member{
			ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: c.httpAddrOf(string(s.ID)),
			Suffrage: suffrageName(s.Suffrage), Keys: c.keysOf(string(s.ID)), Protocol: protocols[i].Protocol,
		})
	}
	in.SealedBy = c.SealedBy()
	in.Term = c.raft.CurrentTerm()
	in.CommitIndex = c.raft.CommitIndex()
	in.AppliedIndex = c.raft.AppliedIndex()
	var err error
	if in.StateDigest, in.DigestIndex, err = c.fsm.Digest(); err != nil {
		return Info{}, problem.Wrap(problem.Internal, err, "state digest")
	}
	return in, nil
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

// RemoveServer removes a server from the cluster (leader only). Its boot ID
// is tombstoned first, so that no later reconcile adds it back.
func (c *Cluster) RemoveServer(ctx context.Context, id, requestID string) error {
	if !c.IsLeader() {
		return proposer.ErrNotLeader
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("remove server: %w", err)
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	boot := ""
	if m, ok := c.memberMeta(id); ok {
		boot = m.Boot
	}
	c.fsm.Read(func(s *fsm.State) {
		if sv, ok := s.Server(id); ok && boot == "" {
			boot = sv.BootID
		}
		if _, ok := s.Server(id); ok {
			found = true
		}
	})
	if !found {
		return problem.E(problem.NotFound, "server %s is not a member", id)
	}
	res, err := c.Propose(ctx, fsm.Command{Type: fsm.CmdRemoveServer, RequestID: requestID,
		RemoveServer: &fsm.RemoveServerCmd{ID: id, BootID: boot}})
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil && !problem.Is(err, problem.NotFound) {
		return err
	}
	if err := c.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("%w: remove server: %v", proposer.ErrUnknownOutcome, err)
	}
	return nil
}

func (c *Cluster) keysOf(id string) []string {
	if id == c.cfg.NodeID {
		return c.Keys().IDs()
	}
	if m, ok := c.memberMeta(id); ok && m.Keys != nil {
		return m.Keys
	}
	return []string{}
}
