package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// statusPath is where a server answers, over the server port only, how
// far its Raft log has come; the leader reads it to decide promotions.
const statusPath = "/internal/v1/status"

// maxTrailing is how many entries a non-voter may lag the leader and
// still count as caught up (Consul autopilot's MaxTrailingLogs).
const maxTrailing = 250

// Status is a server's Raft progress.
type Status struct {
	ID        string `json:"id"`
	Term      uint64 `json:"term"`
	LastIndex uint64 `json:"last_index"`
	// Applied is the last entry the state machine has applied. (Raft's
	// own applied index moves when an entry is handed to the state
	// machine, before it is applied, so WaitApplied cannot rely on it.)
	Applied uint64 `json:"applied_index"`
}

type forwardedHandler struct{ h http.Handler }

// serverHandler serves the server port's HTTP: the status route, and
// everything else to the handler given to ServeForwarded (the API), with
// the sending server's ID in the request's context (FromServer).
func (c *Cluster) serverHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == statusPath {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(Status{
				ID: c.cfg.NodeID, Term: c.raft.CurrentTerm(), LastIndex: c.raft.LastIndex(), Applied: c.fsm.AppliedIndex(),
			})
			return
		}
		if fh, ok := c.forwarded.Load().(forwardedHandler); ok && fh.h != nil {
			fh.h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
}

// ServeForwarded sets the handler of requests other servers forward to
// this one over the server port.
func (c *Cluster) ServeForwarded(h http.Handler) { c.forwarded.Store(forwardedHandler{h}) }

// ErrNoLeader is returned by Forward when no other server is known to
// lead.
var ErrNoLeader = errors.New("no leader known")

// Forward sends req to the leader over the server port (mutual TLS under
// the cluster key) and returns its answer. The leader's address is the
// one in the Raft configuration, never one taken from gossip.
func (c *Cluster) Forward(req *http.Request) (*http.Response, error) {
	addr, id := c.raft.LeaderWithID()
	if addr == "" || string(id) == c.cfg.NodeID {
		return nil, ErrNoLeader
	}
	req.URL.Scheme = "http"
	req.URL.Host = string(addr)
	req.Host = string(id)
	return c.fwd.Do(req)
}

func (c *Cluster) fetchStatus(ctx context.Context, addr string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+statusPath, nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := c.fwd.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return Status{}, err
	}
	return st, nil
}

// promote makes non-voters voters once they have stayed caught up and
// reachable for Timing.Stabilization (Consul autopilot's rule): a server
// that joins counts toward quorum only once it has shown it can keep up,
// so one that dies while it catches up costs no quorum.
func (c *Cluster) promote(ctx context.Context, servers []raft.Server) {
	now := c.cfg.Now()
	seen := map[string]bool{}
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			continue
		}
		id := string(s.ID)
		seen[id] = true
		st, err := c.fetchStatus(ctx, string(s.Address))
		healthy := err == nil && st.ID == id && st.Term == c.raft.CurrentTerm() && st.LastIndex+maxTrailing >= c.raft.LastIndex()
		if !healthy {
			if _, ok := c.health[id]; ok {
				c.log.Info("non-voter not healthy; promotion postponed", "server", id, "err", err)
			} else {
				c.log.Debug("non-voter not healthy yet", "server", id, "err", err, "last_index", st.LastIndex, "term", st.Term)
			}
			delete(c.health, id)
			continue
		}
		since, ok := c.health[id]
		if !ok {
			c.health[id] = now
			continue
		}
		if now.Sub(since) < c.cfg.Timing.Stabilization {
			continue
		}
		if err := c.raft.AddVoter(s.ID, s.Address, 0, 10*time.Second).Error(); err != nil {
			c.log.Warn("promote to voter", "server", id, "err", err)
			continue
		}
		delete(c.health, id)
		c.log.Info("promoted server to voter", "server", id, "healthy_for", now.Sub(since).Round(time.Millisecond))
	}
	for id := range c.health {
		if !seen[id] {
			delete(c.health, id)
		}
	}
}

// Keys is the keyring in force.
func (c *Cluster) Keys() Keys { return *c.keys.Load() }

// Sealer is the keyring that seals and opens secrets in Raft.
func (c *Cluster) Sealer() *secrets.Keyring { return c.sealer.Load() }

// ReloadKeys puts a new keyring in force: gossip gains the new keys,
// switches to the new primary and drops the keys no longer listed; TLS
// presents a certificate of the new primary and accepts every listed key.
// It refuses a keyring that lacks the key the secrets in Raft are sealed
// with, since this server could no longer open them.
func (c *Cluster) ReloadKeys(ks Keys) error {
	if len(ks) == 0 {
		return errors.New("no cluster key")
	}
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	var sealedBy string
	c.fsm.Read(func(s *fsm.State) {
		if s.CA != nil && s.CA.Key != nil {
			sealedBy = s.CA.Key.KeyID
		}
	})
	if sealedBy != "" && !ks.Sealer().Has(sealedBy) {
		return fmt.Errorf("the new key file lacks the key the cluster's secrets are sealed with; make the new key primary on every server and let the leader re-seal (GET /api/v1/cluster shows sealed_by) before removing the old one")
	}
	if c.meta != nil {
		if err := c.meta.withKeys(ks.IDs()).fits(); err != nil {
			return err
		}
	}
	m, err := newTLSMaterial(c.cfg.NodeID, ks)
	if err != nil {
		return err
	}
	old := *c.keys.Load()
	for _, k := range ks {
		if err := c.gossKey.AddKey(k.gossipKey()); err != nil {
			return fmt.Errorf("gossip keyring: %w", err)
		}
	}
	if err := c.gossKey.UseKey(ks.Primary().gossipKey()); err != nil {
		return fmt.Errorf("gossip keyring: %w", err)
	}
	keep := map[string]bool{}
	for _, k := range ks {
		keep[k.id] = true
	}
	for _, k := range old {
		if !keep[k.id] {
			if err := c.gossKey.RemoveKey(k.gossipKey()); err != nil {
				return fmt.Errorf("gossip keyring: %w", err)
			}
		}
	}
	cp := append(Keys(nil), ks...)
	c.keys.Store(&cp)
	c.sealer.Store(cp.Sealer())
	c.tlsm.Store(m)
	c.meta.setKeys(cp.IDs())
	if c.ml != nil {
		if err := c.ml.UpdateNode(5 * time.Second); err != nil {
			c.log.Warn("announce keys", "err", err)
		}
	}
	c.membershipChanged()
	c.log.Info("cluster keys reloaded", "primary", ks.Primary().ID(), "keys", cp.IDs())
	return nil
}

// resealSecrets seals the CA key anew under the primary key when it is
// sealed under another (after a rotation) or not at all (a log written
// before keys were sealed). Leader only.
func (c *Cluster) resealSecrets(ctx context.Context) {
	var ca *fsm.CAState
	c.fsm.Read(func(s *fsm.State) {
		if s.CA != nil {
			cp := *s.CA
			ca = &cp
		}
	})
	sealer := c.Sealer()
	if ca == nil || (ca.Key != nil && ca.Key.KeyID == sealer.PrimaryID()) {
		return
	}
	plain := ca.KeyDER
	if ca.Key != nil {
		var err error
		if plain, err = sealer.Open(fsm.CAKeyPurpose, ca.Key); err != nil {
			c.log.Error("re-seal the CA key", "err", err)
			return
		}
	}
	sealed, err := sealer.Seal(fsm.CAKeyPurpose, plain)
	if err != nil {
		c.log.Error("re-seal the CA key", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.Propose(pctx, fsm.Command{Type: fsm.CmdSealCA, RequestID: "seal-ca/" + sealed.KeyID + "/" + strconv.FormatUint(c.raft.LastIndex(), 10),
		SealCA: &fsm.CAState{CertDER: ca.CertDER, Key: sealed}})
	if err == nil {
		err = res.Err()
	}
	if err != nil && !errors.Is(err, proposer.ErrNotLeader) {
		c.log.Warn("re-seal the CA key", "err", err)
		return
	}
	if err == nil {
		c.log.Info("cluster CA key sealed", "key", sealed.KeyID)
	}
}

// SealedBy is the fingerprint of the cluster key the cluster's secrets are
// sealed with: "" before there are any, "clear" for a key written by a
// version that did not seal, and "unknown" when none of this server's
// keys sealed them.
func (c *Cluster) SealedBy() string {
	var id string
	var clear bool
	c.fsm.Read(func(s *fsm.State) {
		if s.CA != nil && s.CA.Key != nil {
			id = s.CA.Key.KeyID
		}
		clear = s.CA != nil && s.CA.Key == nil
	})
	if clear {
		return "clear"
	}
	if id == "" {
		return ""
	}
	for _, k := range c.Keys() {
		if k.sealKey().ID() == id {
			return k.ID()
		}
	}
	return "unknown"
}

type atomicHandler = atomic.Value

// CatchUp waits until this server has applied everything the leader had
// applied when asked: after it, a local read sees every write the leader
// acknowledged before the call. On the leader it returns at once. It asks
// the leader once, over the server port, and fails when no leader is
// known or it does not answer before ctx ends.
func (c *Cluster) CatchUp(ctx context.Context) error {
	if c.IsLeader() {
		return nil
	}
	addr, id := c.raft.LeaderWithID()
	if id == "" {
		return proposer.ErrNotLeader
	}
	st, err := c.fetchStatus(ctx, string(addr))
	if err != nil {
		return fmt.Errorf("ask the leader how far it has applied: %w", err)
	}
	for {
		changed := c.fsm.Changed()
		if c.fsm.AppliedIndex() >= st.Applied {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// WaitApplied waits, on the leader, until every other server in the
// configuration has applied the log up to index, so that a revocation is
// in force on every server before it is acknowledged. A server that does
// not answer within the wait is passed over: it cannot serve a leader
// route, and it serves local reads only from the state it had.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64) error {
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == c.cfg.NodeID {
			continue
		}
		for {
			st, err := c.fetchStatus(ctx, string(s.Address))
			if err == nil && st.Applied >= index {
				break
			}
			if err != nil && ctx.Err() == nil {
				c.log.Debug("wait applied: server not answering", "server", s.ID, "err", err)
				break
			}
			select {
			case <-ctx.Done():
				c.log.Warn("wait applied: server behind", "server", s.ID, "index", index)
				return nil
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}
