package api

import (
	"slices"
	"sort"
	"strings"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// storageJSON is one of a node's Proxmox storages as its agent reported
// it; total and available are bytes.
type storageJSON struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Content   []string `json:"content"`
	Total     uint64   `json:"total"`
	Available uint64   `json:"available"`
	// Shared: the storage is reachable from every node of its Proxmox
	// cluster, so a backup on it can be restored on another node.
	Shared bool `json:"shared"`
}

func storagesJSON(in []*pb.Storage) []storageJSON {
	out := make([]storageJSON, 0, len(in))
	for _, s := range in {
		c := append([]string{}, s.Content...)
		out = append(out, storageJSON{Name: s.Name, Type: s.Type, Content: c, Total: s.Total, Available: s.Available, Shared: s.Shared})
	}
	return out
}

// checkStorage checks that a storage named in the settings (field) is one
// that holds content on at least one enrolled node, by the storages the
// nodes' agents last reported to this leader. It answers 400 naming the
// storage and listing the ones that would do. When no node has reported
// its storages yet (a cluster being set up before its first agent
// joins), the name cannot be checked and is accepted: the agent's own
// checks and Proxmox refuse a storage that does not exist at deploy time.
func (a *API) checkStorage(field, name, content string) error {
	if a.agents == nil {
		return nil
	}
	var nodes []fsm.NodeRecord
	a.b.FSM().Read(func(s *fsm.State) { nodes = s.ListNodes() })
	reported := false
	known := map[string]bool{}
	for _, n := range nodes {
		li, ok := a.agents.NodeLive(n.Name)
		if !ok || li.Storages == nil {
			continue
		}
		reported = true
		for _, st := range li.Storages {
			if slices.Contains(st.Content, content) {
				if st.Name == name {
					return nil
				}
				known[st.Name] = true
			}
		}
	}
	if !reported {
		return nil
	}
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	list := "none"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	return problem.E(problem.Invalid, "%s: no node has a storage %q for %s content; the nodes' %s storages: %s", field, name, content, content, list)
}
