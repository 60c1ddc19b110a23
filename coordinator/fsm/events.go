package fsm

import (
	"fmt"
	"strconv"
	"strings"
)

// Change kinds, as the events stream names them.
const (
	ChangeApp           = "app"
	ChangeAppDeleted    = "app.deleted"
	ChangeBackup        = "backup"
	ChangeBackupDeleted = "backup.deleted"
	ChangeNode          = "node"
	ChangeNodeDeleted   = "node.deleted"
)

// Change is a notice that an object changed at a log index: what the
// events stream turns into an event by rendering the object as it is
// when the event is sent. Owner is the app's owner (apps and backups;
// empty for nodes), App the app of a backup. Notices are recorded during
// Apply, in log order, from the command and the state alone, so every
// server records the same notices for the same log.
type Change struct {
	ID    ChangeID `json:"-"`
	Kind  string   `json:"kind"`
	Key   string   `json:"key"`
	Owner string   `json:"owner,omitempty"`
	App   string   `json:"app,omitempty"`
}

// ChangeID orders changes: the log index and the change's position among
// the changes of that entry.
type ChangeID struct {
	Index uint64
	N     uint32
}

// String is the events stream's event id, "INDEX-N".
func (c ChangeID) String() string {
	return strconv.FormatUint(c.Index, 10) + "-" + strconv.FormatUint(uint64(c.N), 10)
}

// Less orders change IDs.
func (c ChangeID) Less(o ChangeID) bool {
	return c.Index < o.Index || (c.Index == o.Index && c.N < o.N)
}

// ParseChangeID reads an event id written by ChangeID.String.
func ParseChangeID(s string) (ChangeID, error) {
	i, n, ok := strings.Cut(s, "-")
	if !ok {
		return ChangeID{}, fmt.Errorf("%q is not INDEX-N", s)
	}
	idx, err := strconv.ParseUint(i, 10, 64)
	if err != nil {
		return ChangeID{}, fmt.Errorf("%q is not INDEX-N", s)
	}
	pos, err := strconv.ParseUint(n, 10, 32)
	if err != nil {
		return ChangeID{}, fmt.Errorf("%q is not INDEX-N", s)
	}
	return ChangeID{idx, uint32(pos)}, nil
}

// DefaultChangeRing is how many changes an FSM remembers for the events
// stream, at least (at most twice as many).
const DefaultChangeRing = 4096

// changeRing is the FSM's bounded memory of recent changes. It is not in
// snapshots: after a restore it starts empty, and floor says that nothing
// at or before it is known.
type changeRing struct {
	buf   []Change
	max   int
	floor ChangeID // every change after floor is in buf
}

func (r *changeRing) add(index uint64, cs []Change) {
	for i, c := range cs {
		c.ID = ChangeID{index, uint32(i)}
		r.buf = append(r.buf, c)
	}
	// The oldest go in bulk once the ring holds twice its size, so that
	// an Apply costs no copy of the ring (amortized O(1)).
	if len(r.buf) > 2*r.max {
		over := len(r.buf) - r.max
		r.floor = r.buf[over-1].ID
		r.buf = append(r.buf[:0:0], r.buf[over:]...)
	}
}

func (r *changeRing) reset(index uint64) {
	r.buf, r.floor = nil, ChangeID{Index: index, N: ^uint32(0)}
}

// ChangesAfter returns the changes after id, oldest first, at most max.
// ok is false when changes after id may have been forgotten (id is older
// than the ring, or from before a restore): the caller must re-read
// state. last is the ID of the newest change known (id when none).
func (f *FSM) ChangesAfter(id ChangeID, max int) (out []Change, last ChangeID, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r := &f.changes
	last = f.lastChangeLocked()
	if id.Less(r.floor) {
		return nil, last, false
	}
	// The ring is in ID order: find the first change after id.
	lo, hi := 0, len(r.buf)
	for lo < hi {
		m := (lo + hi) / 2
		if id.Less(r.buf[m].ID) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	for _, c := range r.buf[lo:] {
		if len(out) == max {
			break
		}
		out = append(out, c)
	}
	return out, last, true
}

// LastChange is the position of the newest change this FSM knows: a
// stream that starts now resumes from it.
func (f *FSM) LastChange() ChangeID {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.lastChangeLocked()
}

func (f *FSM) lastChangeLocked() ChangeID {
	if n := len(f.changes.buf); n > 0 {
		return f.changes.buf[n-1].ID
	}
	if f.changes.floor.Index > 0 {
		return f.changes.floor
	}
	// Nothing changed since this FSM started: the applied index, before
	// any change of the next entry.
	return ChangeID{Index: f.st.Index, N: ^uint32(0)}
}

// changeBefore is what a command's changes need of the state before it
// applies: an app's owner and backups, which a removal takes away.
type changeBefore struct {
	owner      string
	backups    []string
	opBackup   string
	source     string
	nodeStatus string
	nodeFound  bool
}

// cmdApp is the app a command acts on, if any.
func cmdApp(c *Command) string {
	switch {
	case c.AppStep != nil:
		return c.AppStep.ID
	case c.AppAction != nil:
		return c.AppAction.ID
	case c.RemoveApp != nil:
		return c.RemoveApp.ID
	case c.CancelApp != nil:
		return c.CancelApp.ID
	case c.MoveApp != nil:
		return c.MoveApp.ID
	case c.MoveStep != nil:
		return c.MoveStep.Step.ID
	case c.SetUpdatePolicy != nil:
		return c.SetUpdatePolicy.ID
	case c.UpdateNotice != nil:
		return c.UpdateNotice.ID
	case c.AutoUpdate != nil:
		return c.AutoUpdate.Action.ID
	case c.BackupSchedule != nil:
		return c.BackupSchedule.AppID
	case c.PruneBackup != nil:
		return c.PruneBackup.AppID
	}
	return ""
}

func cmdNode(c *Command) string {
	switch {
	case c.JoinNode != nil:
		return c.JoinNode.Node
	case c.NodeStatus != nil:
		return c.NodeStatus.Node
	case c.RemoveNode != nil:
		return c.RemoveNode.Node
	case c.SetNodeAddress != nil:
		return c.SetNodeAddress.Node
	}
	return ""
}

func (s *State) changeBefore(c *Command) changeBefore {
	var b changeBefore
	if id := cmdApp(c); id != "" {
		if a, ok := s.Apps[id]; ok {
			b.owner, b.opBackup, b.source = a.Owner, a.OpArgs["backup"], a.OpArgs["source"]
			if c.RemoveApp != nil {
				for _, x := range s.AppBackups(id) {
					b.backups = append(b.backups, x.ID)
				}
			}
		}
	}
	if n := cmdNode(c); n != "" {
		if rec, ok := s.Nodes[n]; ok {
			b.nodeStatus, b.nodeFound = rec.Status, true
		}
	}
	return b
}

// changes lists what a command that succeeded changed, for the events
// stream.
func (s *State) changes(c *Command, r Result, b changeBefore) []Change {
	var out []Change
	app := func(id string) {
		if a, ok := s.Apps[id]; ok {
			out = append(out, Change{Kind: ChangeApp, Key: id, Owner: a.Owner})
		}
	}
	backup := func(id, appID, owner string) {
		if id == "" {
			return
		}
		if _, ok := s.Backups[id]; ok {
			out = append(out, Change{Kind: ChangeBackup, Key: id, Owner: owner, App: appID})
		} else {
			out = append(out, Change{Kind: ChangeBackupDeleted, Key: id, Owner: owner, App: appID})
		}
	}
	switch {
	case c.CreateApp != nil && r.App != nil:
		app(r.App.ID)
	case c.AdoptApp != nil && r.App != nil:
		app(r.App.ID)
	case c.CloneApp != nil && r.App != nil:
		app(r.App.ID)
		app(c.CloneApp.SourceID)
	case c.AppAction != nil:
		app(c.AppAction.ID)
		if c.AppAction.Op == OpBackup || c.AppAction.Op == OpUpdate {
			backup(c.AppAction.BackupID, c.AppAction.ID, b.owner)
		}
	case c.AutoUpdate != nil:
		app(c.AutoUpdate.Action.ID)
		backup(c.AutoUpdate.Action.BackupID, c.AutoUpdate.Action.ID, b.owner)
	case c.AppStep != nil:
		st := c.AppStep
		app(st.ID)
		if st.Backup != nil {
			backup(st.Backup.ID, st.ID, b.owner)
		} else if st.Done && b.opBackup != "" {
			backup(b.opBackup, st.ID, b.owner)
		}
		if st.Done && b.source != "" {
			app(b.source) // a clone's end frees its source
		}
	case c.CancelApp != nil:
		app(c.CancelApp.ID)
	case c.BackupSchedule != nil:
		// A run that started or was skipped changes the app; one that only
		// sets the next run does not.
		if bs := c.BackupSchedule; bs.Start || bs.Skip != "" {
			app(bs.AppID)
			if bs.Start {
				backup(bs.BackupID, bs.AppID, b.owner)
			}
		}
	case c.RemoveApp != nil:
		if b.owner != "" {
			for _, id := range b.backups {
				out = append(out, Change{Kind: ChangeBackupDeleted, Key: id, Owner: b.owner, App: c.RemoveApp.ID})
			}
			out = append(out, Change{Kind: ChangeAppDeleted, Key: c.RemoveApp.ID, Owner: b.owner})
		}
	case c.JoinNode != nil || c.NodeStatus != nil:
		n := cmdNode(c)
		if rec, ok := s.Nodes[n]; ok && (!b.nodeFound || rec.Status != b.nodeStatus || c.JoinNode != nil) {
			out = append(out, Change{Kind: ChangeNode, Key: n})
		}
	case c.SetNodeAddress != nil:
		if _, ok := s.Nodes[c.SetNodeAddress.Node]; ok {
			out = append(out, Change{Kind: ChangeNode, Key: c.SetNodeAddress.Node})
		}
	case c.RemoveNode != nil:
		out = append(out, Change{Kind: ChangeNodeDeleted, Key: c.RemoveNode.Node})
	default:
		if id := cmdApp(c); id != "" {
			app(id)
		}
	}
	return out
}

// Backup returns one backup.
func (s *State) Backup(id string) (Backup, bool) {
	b, ok := s.Backups[id]
	if !ok {
		return Backup{}, false
	}
	return *b, true
}
