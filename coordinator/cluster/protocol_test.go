package cluster

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// TestServerProtocols: the leader counts itself at its own protocol, every
// other server at the last protocol it announced over gossip (a server of
// a release that announced none at the base protocol), a server that left
// at what it announced before it left, and a server it never heard from
// as unknown (0), which fsm.CheckProtocol refuses new types for.
func TestServerProtocols(t *testing.T) {
	c := &Cluster{cfg: Config{NodeID: "c1"}, live: map[string]meta{}, protocols: map[string]int{}, events: make(chan struct{}, 1)}
	announce := func(m meta, alive bool) {
		b, _ := json.Marshal(m)
		c.track(&memberlist.Node{Name: m.ID, Meta: b}, alive)
	}
	announce(meta{ID: "c2", Raft: "10.0.0.2:7001", Protocol: fsm.ProtocolVersion}, true)
	old, _ := json.Marshal(map[string]any{"id": "c3", "raft": "10.0.0.3:7001", "boot": "b"}) // a 0.x server's meta
	c.track(&memberlist.Node{Name: "c3", Meta: old}, true)
	announce(meta{ID: "c4", Raft: "10.0.0.4:7001", Protocol: fsm.ProtocolVersion}, true)
	announce(meta{ID: "c4", Raft: "10.0.0.4:7001", Protocol: fsm.ProtocolVersion}, false) // c4 left
	servers := []raft.Server{{ID: "c1"}, {ID: "c2"}, {ID: "c3"}, {ID: "c4"}, {ID: "c5"}}
	got := c.serverProtocols(servers)
	want := []fsm.ServerProtocol{
		{ID: "c1", Protocol: fsm.ProtocolVersion}, {ID: "c2", Protocol: fsm.ProtocolVersion},
		{ID: "c3", Protocol: fsm.BaseProtocol}, {ID: "c4", Protocol: fsm.ProtocolVersion}, {ID: "c5", Protocol: 0},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	// Every command type of this version is of the base protocol: none is
	// refused, whatever the servers speak.
	for _, typ := range []fsm.CommandType{fsm.CmdReserve, fsm.CmdPruneBackup, fsm.CmdUpsertServer} {
		if err := fsm.CheckProtocol(typ, got); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	// A type this version does not know is never proposed.
	if err := fsm.CheckProtocol(0x7fff, got); err == nil {
		t.Fatal("an unknown type passed the check")
	}
}
