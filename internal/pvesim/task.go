package pvesim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// UPID formats a task ID the way pve-common does:
// UPID:node:pid:pstart:starttime:type:id:user: with upper-case hex.
func UPID(node string, pid int, start time.Time, typ, id, user string) string {
	return fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", node, pid, pid*7, start.Unix(), typ, id, user)
}

// maxTasks bounds the finished tasks kept in the state (Proxmox rotates
// its task index too); running tasks are always kept.
const maxTasks = 2000

// task is a worker in progress: its log goes to the task log file as it is
// written and, in the command line, to stdout.
type task struct {
	upid string
	path string
	out  func(string)
}

// newTask records a running task owned by this process and creates its log.
func (n *Node) newTask(dir, typ, id string, out func(string)) *task {
	n.NextPID++
	now := time.Now()
	upid := UPID(n.Name, n.NextPID, now, typ, id, "root@pam")
	n.Tasks = append(n.Tasks, Task{UPID: upid, Type: typ, ID: id, Status: "running", Owner: os.Getpid(), Start: now.Unix(), User: "root@pam"})
	if len(n.Tasks) > maxTasks {
		kept := n.Tasks[:0]
		drop := len(n.Tasks) - maxTasks
		for _, t := range n.Tasks {
			if drop > 0 && t.Status != "running" {
				drop--
				continue
			}
			kept = append(kept, t)
		}
		n.Tasks = kept
	}
	t := &task{upid: upid, out: out}
	if dir != "" {
		t.path = filepath.Join(dir, "tasks", upid)
		_ = os.MkdirAll(filepath.Dir(t.path), 0o755)
		_ = os.WriteFile(t.path, nil, 0o644)
	}
	return t
}

// log prints a worker line and appends it to the task log.
func (t *task) log(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if t.out != nil {
		t.out(line)
	}
	if t.path != "" {
		if f, err := os.OpenFile(t.path, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

// finish records the task's end and writes its last log line; err nil
// means TASK OK. It returns err.
func (t *task) finish(n *Node, err error) error {
	exit := "OK"
	last := "TASK OK"
	if err != nil {
		exit = strings.ReplaceAll(strings.TrimRight(err.Error(), "\n"), "\n", " ")
		last = "TASK ERROR: " + exit
	}
	if tk := n.task(t.upid); tk != nil {
		tk.Status, tk.Exit, tk.End = "stopped", exit, time.Now().Unix()
	}
	saved := t.out
	t.out = nil
	t.log("%s", last)
	t.out = saved
	return err
}

func (n *Node) task(upid string) *Task {
	for i := range n.Tasks {
		if n.Tasks[i].UPID == upid {
			return &n.Tasks[i]
		}
	}
	return nil
}

// reapTasks marks running tasks whose owning process is gone as Proxmox
// shows a worker that died: stopped with "unexpected status".
func (n *Node) reapTasks() {
	for i := range n.Tasks {
		t := &n.Tasks[i]
		if t.Status == "running" && t.Owner != os.Getpid() && !alive(t.Owner) {
			t.Status, t.Exit, t.End = "stopped", "unexpected status", time.Now().Unix()
		}
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// work is one Proxmox worker. begin runs under the state lock before the
// task exists: its errors are the synchronous ones a command prints before
// it forks. The task then holds the container's lock (set by begin) while
// it runs, outside the state lock, so other commands see "CT is locked".
// body runs under the state lock at the end; its error is the task's
// error, and onFail undoes what begin did when the task fails.
type work struct {
	typ    string
	vmid   int
	id     string // the UPID's id field; the VMID when empty
	lock   string // lock held on vmid while the task runs
	begin  func(n *Node) error
	body   func(n *Node, t *task) error
	onFail func(n *Node)
}

// hangSelf blocks the worker for good, as a hung Proxmox worker does. Tests replace it.
var hangSelf = func() { select {} }

// crashSelf ends the process the way a killed worker ends. Tests replace it.
var crashSelf = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }

// run executes w synchronously, as the command line does, printing worker
// output with out.
func (s *Store) run(w work, out func(string)) error {
	if w.id == "" && w.vmid != 0 {
		w.id = fmt.Sprint(w.vmid)
	}
	var t *task
	var f Faults
	err := s.Update(func(n *Node) error {
		if w.begin != nil {
			if err := w.begin(n); err != nil {
				return err
			}
		}
		if ct := n.CTs[w.vmid]; ct != nil && w.lock != "" {
			ct.Lock = w.lock
		}
		t = n.newTask(s.Dir, w.typ, w.id, out)
		f = n.Faults
		if f.has(f.Hang, w.typ) {
			n.task(t.upid).Hung = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.sleep()
	time.Sleep(time.Duration(f.TaskMS) * time.Millisecond)
	if f.has(f.Hang, w.typ) {
		hangSelf() // until the process is killed: the caller's deadline, a cancel, an admin
		return errors.New("worker hung")
	}
	if f.has(f.Crash, w.typ) {
		crashSelf()
		return errors.New("worker crashed")
	}
	var failed error
	err = s.Update(func(n *Node) error {
		var err error
		if n.Faults.has(n.Faults.Fail, w.typ) || n.Faults.transient() {
			err = fail("can't lock file '/run/lock/lxc/pve-config-%d.lock' - got timeout", w.vmid)
		} else {
			err = w.body(n, t)
		}
		if err != nil && w.onFail != nil {
			w.onFail(n)
		}
		if ct := n.CTs[w.vmid]; ct != nil && w.lock != "" && ct.Lock == w.lock {
			ct.Lock = ""
		}
		failed = t.finish(n, err)
		return nil
	})
	if err != nil {
		return err
	}
	if failed != nil {
		return &taskFailure{failed}
	}
	return nil
}

// taskFailure is an error a worker ended with (TASK ERROR), as opposed to
// one raised before the task started.
type taskFailure struct{ err error }

func (e *taskFailure) Error() string { return e.err.Error() }
func (e *taskFailure) Unwrap() error { return e.err }
