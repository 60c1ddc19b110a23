package pvesim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// onCT runs fn on container id under the state lock after the checks every
// configuration-changing command makes first: the container exists and
// holds no lock.
func (c *pct) onCT(id int, fn func(n *Node, ct *CT) error) error {
	return c.st.Update(func(n *Node) error {
		ct, err := n.ct(id)
		if err != nil {
			return err
		}
		if err := locked(ct); err != nil {
			return err
		}
		return fn(n, ct)
	})
}

// snapshotCapable reports whether the CT's root disk is on a storage that
// can snapshot (lvmthin here; a raw image on a dir storage cannot).
func snapshotCapable(n *Node, ct *CT) bool {
	storage, _, _ := strings.Cut(ct.Config["rootfs"], ":")
	s, ok := n.Storage(storage)
	return ok && s.Type != "dir"
}

func copyConfig(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ctWork is a task on an existing, unlocked container that holds lock
// while it runs.
func (c *pct) ctWork(typ string, id int, lock string, body func(n *Node, ct *CT, t *task) error) error {
	return c.st.ctWork(typ, id, lock, nil, body, c.out)
}

// ctWork runs a worker on container id: check (if any) and the
// container's existence and lock are verified before it starts, and body
// gets the container at the end.
func (s *Store) ctWork(typ string, id int, lock string, check func(n *Node) error, body func(n *Node, ct *CT, t *task) error, out func(string)) error {
	return s.run(work{typ: typ, vmid: id, lock: lock,
		begin: func(n *Node) error {
			if check != nil {
				if err := check(n); err != nil {
					return err
				}
			}
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			return locked(ct)
		},
		body: func(n *Node, t *task) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			return body(n, ct, t)
		},
	}, out)
}

func (c *pct) snapshot(id int, name, description string) error {
	if name == "current" || name == "vzdump" {
		return fail("unable to use snapshot name '%s' (reserved name)", name)
	}
	return c.ctWork("vzsnapshot", id, "snapshot", func(n *Node, ct *CT, t *task) error {
		switch {
		case ct.Snapshots[name] != nil:
			return fail("snapshot name '%s' already used", name)
		case !snapshotCapable(n, ct):
			return fail("snapshot feature is not available")
		}
		if ct.Snapshots == nil {
			ct.Snapshots = map[string]*Snapshot{}
		}
		ct.Snapshots[name] = &Snapshot{Parent: ct.Parent, Time: time.Now().Unix(), Description: description, Config: copyConfig(ct.Config)}
		ct.Parent = name
		return nil
	})
}

func (c *pct) delsnapshot(id int, name string) error {
	return c.ctWork("vzdelsnapshot", id, "snapshot-delete", func(n *Node, ct *CT, t *task) error {
		snap, ok := ct.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		// Children and "current" move up to the deleted snapshot's parent.
		for _, s := range ct.Snapshots {
			if s.Parent == name {
				s.Parent = snap.Parent
			}
		}
		if ct.Parent == name {
			ct.Parent = snap.Parent
		}
		delete(ct.Snapshots, name)
		return nil
	})
}

func (c *pct) rollback(id int, name string, start bool) error {
	err := c.ctWork("vzrollback", id, "rollback", func(n *Node, ct *CT, t *task) error {
		snap, ok := ct.Snapshots[name]
		if !ok {
			return fail("snapshot '%s' does not exist", name)
		}
		// A running container is hard-stopped first, as Proxmox does.
		ct.Status, ct.PID, ct.Uptime = "stopped", 0, 0
		ct.Config = copyConfig(snap.Config)
		ct.Parent = name
		return nil
	})
	if err != nil || !start {
		return err
	}
	return c.start(id, false)
}

// listsnapshot prints the snapshot tree as pct does: roots by time, each
// line "<prefix> <name> <time> <description>" with the prefix "`->"
// indented one space per level, and "current" last under its parent.
func (c *pct) listsnapshot(ct *CT) {
	children := map[string][]string{}
	for name, s := range ct.Snapshots {
		children[s.Parent] = append(children[s.Parent], name)
	}
	for _, kids := range children {
		sort.Slice(kids, func(i, j int) bool {
			a, b := ct.Snapshots[kids[i]], ct.Snapshots[kids[j]]
			return a.Time < b.Time || (a.Time == b.Time && kids[i] < kids[j])
		})
	}
	var walk func(parent string, depth int)
	line := func(depth int, name, when, desc string) {
		prefix := strings.Repeat(" ", depth) + "`->"
		fmt.Fprintf(c.stdout, "%s %-*s %-23s %s\n", prefix, 30-len(prefix), name, when, desc)
	}
	walk = func(parent string, depth int) {
		for _, name := range children[parent] {
			s := ct.Snapshots[name]
			desc, _, _ := strings.Cut(s.Description, "\n")
			if desc == "" {
				desc = "no-description"
			}
			line(depth, name, time.Unix(s.Time, 0).Format("2006-01-02 15:04:05"), desc)
			walk(name, depth+1)
		}
		if parent == ct.Parent {
			line(depth, "current", "", "You are here!")
		}
	}
	walk("", 0)
}
