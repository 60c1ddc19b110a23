package fsm

import (
	"sort"

	"github.com/proximity-ve/proximity/internal/problem"
)

// Server is a coordinator server as the cluster knows it. The leader writes
// these from what servers announce over gossip, so that every server can
// find every other server's HTTP address.
type Server struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	HTTPAddr   string `json:"http_addr"`
	GRPCAddr   string `json:"grpc_addr"`
	GossipAddr string `json:"gossip_addr"`
	// BootID identifies one incarnation of the server's data directory.
	BootID string `json:"boot_id"`
}

func (s *State) upsertServer(sv Server) error {
	if sv.ID == "" || sv.RaftAddr == "" || sv.BootID == "" {
		return problem.E(problem.Invalid, "server: id, raft_addr and boot_id required")
	}
	if s.Tombstones[sv.ID] == sv.BootID {
		return problem.E(problem.Conflict, "server %s (boot %s) was removed; start it with a new data directory to add it again", sv.ID, sv.BootID)
	}
	cp := sv
	s.Servers[sv.ID] = &cp
	return nil
}

func (s *State) removeServer(c RemoveServerCmd) error {
	if _, ok := s.Servers[c.ID]; !ok && c.BootID == "" {
		return problem.E(problem.NotFound, "server %s not found", c.ID)
	}
	delete(s.Servers, c.ID)
	if c.BootID != "" {
		s.Tombstones[c.ID] = c.BootID
	}
	return nil
}

// Server returns a server by ID.
func (s *State) Server(id string) (Server, bool) {
	sv, ok := s.Servers[id]
	if !ok {
		return Server{}, false
	}
	return *sv, true
}

// IsTombstoned reports whether this incarnation of a server was removed.
func (s *State) IsTombstoned(id, bootID string) bool {
	return bootID != "" && s.Tombstones[id] == bootID
}

// ListServers returns all known servers sorted by ID.
func (s *State) ListServers() []Server {
	out := make([]Server, 0, len(s.Servers))
	for _, sv := range s.Servers {
		out = append(out, *sv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
