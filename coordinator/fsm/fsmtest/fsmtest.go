// Package fsmtest holds what the tests of the FSM's users share: a
// backend that applies every proposal at once, without Raft.
package fsmtest

import (
	"context"
	"sync"
	"testing"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// Backend applies every proposal to a state machine at once, in order: a
// one-server cluster without Raft, as the lifecycle controller and the
// agent service see it.
type Backend struct {
	mu  sync.Mutex
	f   *fsm.FSM
	idx uint64
}

// New returns a backend over an empty state.
func New() *Backend { return &Backend{f: fsm.New(0)} }

// Propose applies cmd at the next index and answers its result.
func (b *Backend) Propose(_ context.Context, cmd fsm.Command) (fsm.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.idx++
	return b.f.ApplyCommands(b.idx, cmd)[0], nil
}

// FSM is the state machine the proposals are applied to.
func (b *Backend) FSM() *fsm.FSM { return b.f }

// Index is the index of the last proposal applied.
func (b *Backend) Index() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idx
}

// Get answers what get finds in f's state, and fails the test, naming
// what, when it finds nothing.
func Get[T any](t testing.TB, f *fsm.FSM, what string, get func(*fsm.State) (T, bool)) T {
	t.Helper()
	var v T
	var ok bool
	f.Read(func(s *fsm.State) { v, ok = get(s) })
	if !ok {
		t.Fatalf("no %s in the state", what)
	}
	return v
}
