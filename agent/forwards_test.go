package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/nat"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// fakeNode records the forwards applied to it; nothing else is called.
type fakeNode struct {
	pve.Runtime
	mu      sync.Mutex
	applied [][]nat.Forward
}

func (f *fakeNode) SetForwards(_ context.Context, fs []nat.Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, fs)
	return nil
}

func (f *fakeNode) last() ([]nat.Forward, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return nil, 0
	}
	return f.applied[len(f.applied)-1], len(f.applied)
}

// TestForwardsIgnoreOlderSetsAndComeBackAfterARestart: a set older than
// the applied one changes nothing, and a new agent on the same data
// directory applies the saved set at once.
func TestForwardsIgnoreOlderSetsAndComeBackAfterARestart(t *testing.T) {
	dir := t.TempDir()
	node := &fakeNode{}
	a, err := New(Config{Node: "pve1", Coordinators: []string{"127.0.0.1:1"}, DataDir: dir, Runtime: node})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	newer := taskspec.ForwardsSpec{Version: 20, Forwards: []nat.Forward{{App: "app_a", Protocol: "tcp", PublicPort: 30000, IP: "10.0.0.5", Port: 80}}}
	if err := a.fw.set(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := a.fw.set(ctx, taskspec.ForwardsSpec{Version: 10}); err != nil {
		t.Fatal(err)
	}
	if fs, n := node.last(); n != 1 || len(fs) != 1 {
		t.Fatalf("an older set was applied: %v", node.applied)
	}

	restarted := &fakeNode{}
	b, err := New(Config{Node: "pve1", Coordinators: []string{"127.0.0.1:1"}, DataDir: dir, Runtime: restarted})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.fw.loop(lctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if fs, _ := restarted.last(); len(fs) == 1 && fs[0].PublicPort == 30000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted agent did not apply the saved forwards")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
