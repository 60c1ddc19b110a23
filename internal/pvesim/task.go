package pvesim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// UPID formats a task ID the way pve-common does:
// UPID:node:pid:pstart:starttime:type:id:user: with upper-case hex.
func UPID(node string, pid int, start time.Time, typ, id, user string) string {
	return fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", node, pid, pid*7, start.Unix(), typ, id, user)
}

// task collects a worker's log; finish writes it with its final line.
type task struct {
	upid  string
	lines []string
	out   func(string)
}

func (n *Node) newTask(typ, id string, out func(string)) *task {
	n.NextPID++
	t := &task{upid: UPID(n.Name, n.NextPID, time.Now(), typ, id, "root@pam"), out: out}
	n.Tasks = append(n.Tasks, Task{UPID: t.upid, Type: typ, ID: id, Status: "running"})
	return t
}

// log prints a worker line (the CLI streams worker output) and keeps it.
func (t *task) log(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.lines = append(t.lines, line)
	t.out(line)
}

// finish records the task's end in the node and writes its log file; err
// nil means TASK OK.
func (t *task) finish(dir string, n *Node, err error) error {
	exit := "OK"
	last := "TASK OK"
	if err != nil {
		exit = strings.ReplaceAll(err.Error(), "\n", " ")
		last = "TASK ERROR: " + exit
	}
	for i := range n.Tasks {
		if n.Tasks[i].UPID == t.upid {
			n.Tasks[i].Status, n.Tasks[i].Exit = "stopped", exit
		}
	}
	if dir != "" {
		p := filepath.Join(dir, "tasks", t.upid)
		if werr := os.MkdirAll(filepath.Dir(p), 0o755); werr == nil {
			_ = os.WriteFile(p, []byte(strings.Join(append(t.lines, last), "\n")+"\n"), 0o644)
		}
	}
	return err
}
