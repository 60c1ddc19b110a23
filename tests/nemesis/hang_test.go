package nemesis

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/proximity-ve/proximity/internal/pvesim"
)

// The hang fault: on one node, every worker of one task type hangs, as a
// Proxmox worker stuck on its storage or a container that does not
// answer does. Clearing the fault does not release the workers it caught
// (a real hung worker does not come back by itself); when the fault ends,
// the nemesis heals them the way people would:
//
//   - the user cancels the app's operation through the API
//     (POST /api/v1/apps/{id}/actions {"action":"cancel"}, with the app
//     owner's token), when the hung worker is the app's own (its UPID
//     names the app's container) and of a kind the agent kills on a
//     cancel (create, start, stop, shutdown: agent/exec.go's killable);
//   - whatever still hangs then — a backup, restore, clone, destroy or
//     snapshot, which the agent does not kill, a worker whose agent was
//     restarted since, or one the seed left to the admin — is stopped by
//     an admin: its process is killed, as Proxmox's "Stop" of a task
//     (DELETE /nodes/{node}/tasks/{upid}) kills the worker, and the lock
//     it left on its container is lifted, as `pct unlock` does (not the
//     "create" lock of a container a killed create was making: the
//     deploy's retry or undo removes that container).

// hangTypes are the workers the hang fault holds.
var hangTypes = append(slices.Clone(simTaskTypes), "vzshutdown", "push_file")

// cancelKills are the worker types whose process the agent kills when the
// task is cancelled (agent/exec.go, killable).
var cancelKills = map[string]bool{"vzcreate": true, "vzstart": true, "vzstop": true, "vzshutdown": true, "push_file": true}

// hangType draws the worker type to hang on node n among the types of its
// last 30 tasks (so that the fault catches work), else among all.
func (w *world) hangType(n int, rng *rand.Rand) string {
	var recent []string
	if st, err := w.simStore(n); err == nil {
		_ = st.View(func(node *pvesim.Node) error {
			for _, t := range node.Tasks[max(0, len(node.Tasks)-30):] {
				if slices.Contains(hangTypes, t.Type) {
					recent = append(recent, t.Type)
				}
			}
			return nil
		})
	}
	if len(recent) == 0 {
		return hangTypes[rng.IntN(len(hangTypes))]
	}
	return recent[rng.IntN(len(recent))]
}

type hungWorker struct {
	upid, typ string
	vmid, pid int
}

// hungWorkers lists the hung workers of node n whose process lives.
func (w *world) hungWorkers(n int) []hungWorker {
	st, err := w.simStore(n)
	if err != nil {
		return nil
	}
	var out []hungWorker
	_ = st.View(func(node *pvesim.Node) error {
		for _, t := range node.Tasks {
			if t.Status == "running" && t.Hung {
				id, _ := strconv.Atoi(t.ID)
				out = append(out, hungWorker{upid: t.UPID, typ: t.Type, vmid: id, pid: t.Owner})
			}
		}
		return nil
	})
	return out
}

// isWorker reports whether pid is a worker process of a simulated node:
// the agent binary run as pct, vzdump or pveam, and no agent itself.
func (w *world) isWorker(pid int) bool {
	if pid <= 0 || pid == os.Getpid() {
		return false
	}
	for _, p := range w.agents {
		if p.pid() == pid {
			return false
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == w.agentBin
}

// releaseHung heals node n's hung workers: the users cancel their apps'
// operations first when byUser (and the worker is one the agent kills on
// a cancel); an admin stops what still hangs.
func (w *world) releaseHung(n int, byUser bool, heals *counters) {
	node := fmt.Sprintf("pve%d", n+1)
	hung := w.hungWorkers(n)
	if len(hung) == 0 {
		w.logf("hang: %s: no worker hung", node)
		return
	}
	w.logf("hang: %s: %d workers hung; their users cancel first: %v", node, len(hung), byUser)
	if byUser {
		apps, err := listAll[appOut](w, w.token, "/api/v1/apps")
		cancelled := 0
		for _, h := range hung {
			if err != nil || !cancelKills[h.typ] {
				continue
			}
			for _, a := range apps {
				if a.Node != node || a.VMID != h.vmid || a.Operation == "" {
					continue
				}
				tok := w.token
				if ut, ok := w.userTok[a.Owner]; ok {
					tok = ut
				}
				st, raw := w.call(tok, "POST", "/api/v1/apps/"+a.ID+"/actions", map[string]any{"action": "cancel"}, "cancel-"+h.upid, 30*time.Second)
				w.logf("hang: %s %s of app %s (%s, %s) hung: its owner cancels: %d %.200s", node, h.typ, a.ID, a.Hostname, a.Operation, st, raw)
				if st == 202 {
					heals.add("hang-cancelled")
					cancelled++
				}
			}
		}
		if cancelled > 0 {
			// The agent kills the command of a cancelled task at once.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) && len(w.hungWorkers(n)) == len(hung) {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	st, err := w.simStore(n)
	if err != nil {
		return
	}
	for _, h := range w.hungWorkers(n) {
		if !w.isWorker(h.pid) {
			w.logf("hang: %s %s %s: process %d is no worker of ours; left alone", node, h.typ, h.upid, h.pid)
			continue
		}
		_ = syscall.Kill(h.pid, syscall.SIGKILL)
		heals.add("hang-stopped")
		gone := false
		for deadline := time.Now().Add(10 * time.Second); !gone && time.Now().Before(deadline); {
			gone = !slices.ContainsFunc(w.hungWorkers(n), func(x hungWorker) bool { return x.upid == h.upid })
			if !gone {
				time.Sleep(100 * time.Millisecond)
			}
		}
		unlocked := ""
		if h.typ != "vzcreate" {
			_ = st.Update(func(s *pvesim.Node) error {
				ct := s.CTs[h.vmid]
				if ct == nil || ct.Lock == "" {
					return nil
				}
				for _, t := range s.Tasks {
					if t.Status == "running" && t.ID == strconv.Itoa(h.vmid) {
						return nil // a live worker holds it
					}
				}
				unlocked, ct.Lock = ct.Lock, ""
				return nil
			})
		}
		w.logf("hang: %s %s %s: an admin stops the task (kill -9 %d; gone: %v) and lifts the lock %q of CT %d", node, h.typ, h.upid, h.pid, gone, unlocked, h.vmid)
	}
}

// killWorkers ends every live worker process of the simulated nodes (at
// teardown: a hung worker outlives its agent).
func (w *world) killWorkers() {
	for n := 0; n < agents; n++ {
		st, err := w.simStore(n)
		if err != nil {
			continue
		}
		_ = st.View(func(node *pvesim.Node) error {
			for _, t := range node.Tasks {
				if t.Status == "running" && w.isWorker(t.Owner) {
					_ = syscall.Kill(t.Owner, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}
