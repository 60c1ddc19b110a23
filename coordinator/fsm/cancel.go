package fsm

import (
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// Steps of an operation's undo: the controller runs them after a failure
// or a cancel, and they are not themselves cancelled.
const (
	StepCleanup        = "cleanup"   // a deploy or clone removes its container (steps cleanup…)
	StepRollbackPrefix = "rollback-" // an update puts the pre-update backup back
	StepInspect        = "settle"    // after a cancel: read the container's real status
)

// ArgCancelledBy in an operation's arguments names who cancelled it.
const ArgCancelledBy = "cancelled_by"

// Task error kinds of fenced tasks.
const (
	TaskCancelled = taskspec.FailCancelled
	TaskTimeout   = taskspec.FailTimeout
)

// Undoing reports whether step is part of an operation's undo.
func Undoing(step string) bool {
	return strings.HasPrefix(step, StepCleanup) || step == StepInspect || strings.HasPrefix(step, StepRollbackPrefix)
}

// CancelAppCmd ends an app's running operation: the current task is
// fenced and the controller runs the operation's undo. Owner, when set,
// must own the app; By names the person, for the app's log.
type CancelAppCmd struct {
	ID    string    `json:"id"`
	Owner string    `json:"owner,omitempty"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// ExpireTaskCmd fails a pending task that ran past its stage's deadline,
// or that an operation cancelled before the task was recorded as its own.
// Fence must be the task's current fence, so an expiry decided on a stale
// view changes nothing.
type ExpireTaskCmd struct {
	ID    string `json:"id"`
	Fence uint64 `json:"fence"`
	// Kind is TaskTimeout (past its deadline) or TaskCancelled.
	Kind   taskspec.Failure `json:"kind"`
	Reason string           `json:"reason"`
	At     time.Time        `json:"at"`
}

func (s *State) cancelApp(index uint64, c CancelAppCmd) (*App, error) {
	a, ok := s.Apps[c.ID]
	if !ok || (c.Owner != "" && a.Owner != c.Owner) {
		return nil, problem.E(problem.NotFound, "app %s does not exist", c.ID)
	}
	switch {
	case a.Op == "":
		return nil, problem.E(problem.Conflict, "app %s has no operation in progress to cancel", c.ID)
	case a.Op == OpCloneSource:
		return nil, problem.E(problem.Conflict, "app %s is the source of a clone; cancel the clone instead", c.ID)
	case a.Op == OpDelete:
		return nil, problem.E(problem.Conflict, "app %s is being deleted; a delete cannot be cancelled", c.ID)
	case a.Op == OpMove && a.OpArgs[ArgMoveSwitched] != "":
		return nil, problem.E(problem.Conflict, "app %s runs on its new node already; its move is removing the old container and cannot be cancelled", c.ID)
	case a.OpArgs[ArgCancelledBy] != "" || Undoing(a.Step):
		return nil, problem.E(problem.Conflict, "app %s: its %s is being undone already", c.ID, a.Op)
	}
	if a.OpArgs == nil {
		a.OpArgs = map[string]string{}
	}
	a.OpArgs[ArgCancelledBy] = c.By
	if a.TaskID != "" {
		s.fenceTask(index, a.TaskID, TaskCancelled, "cancelled by "+c.By, c.At)
	}
	a.log(c.At, a.Op+" cancelled by "+c.By)
	a.UpdatedAt = c.At.UTC()
	cp := *a
	return &cp, nil
}

func (s *State) expireTask(index uint64, c ExpireTaskCmd) (*Task, error) {
	t, ok := s.Tasks[c.ID]
	if !ok {
		return nil, problem.E(problem.NotFound, "task %s does not exist", c.ID)
	}
	if c.Kind != TaskTimeout && c.Kind != TaskCancelled {
		return nil, problem.E(problem.Invalid, "kind: %q must be %s or %s", c.Kind, TaskTimeout, TaskCancelled)
	}
	if t.State != TaskPending || t.Fence != c.Fence {
		return nil, problem.E(problem.Conflict, "task %s moved on", c.ID)
	}
	s.fenceTask(index, c.ID, c.Kind, c.Reason, c.At)
	cp := *t
	return &cp, nil
}

// fenceTask fails a pending task under a new fence: a result its agent
// reports later carries the old fence and is refused, so the task can
// never complete its operation. The agent is told to stop it (see
// FencedTasks).
func (s *State) fenceTask(index uint64, id string, kind taskspec.Failure, reason string, at time.Time) {
	t, ok := s.Tasks[id]
	if !ok || t.State != TaskPending {
		return
	}
	s.tasksAt = index
	t.Fence, t.State, t.Error, t.ErrorKind, t.Output, t.DoneAt = index, TaskFailed, reason, kind, nil, at.UTC()
	s.TaskSeq++
	t.DoneSeq = s.TaskSeq
	s.pruneTasks()
}

// FencedTasks lists a node's tasks that were cancelled or expired after
// index, oldest first: their agent stops them.
func (s *State) FencedTasks(node string, after uint64) []Task {
	var out []Task
	for _, t := range s.Tasks {
		if t.Node == node && t.State == TaskFailed && t.Fence > after && (t.ErrorKind == TaskCancelled || t.ErrorKind == TaskTimeout) {
			out = append(out, *t)
		}
	}
	sortTasks(out)
	return out
}
