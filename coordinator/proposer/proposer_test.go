package proposer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// fakeRaft applies entries to a real FSM after a delay, recording batch
// sizes, or fails them with err.
type fakeRaft struct {
	mu      sync.Mutex
	f       *fsm.FSM
	index   uint64
	batches []int
	delay   time.Duration
	err     error
}

type future struct {
	err  error
	resp any
	idx  uint64
}

func (f future) Error() error  { return f.err }
func (f future) Response() any { return f.resp }
func (f future) Index() uint64 { return f.idx }

func (r *fakeRaft) Apply(data []byte, _ time.Duration) raft.ApplyFuture {
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return future{err: r.err}
	}
	r.index++
	resp := r.f.Apply(&raft.Log{Index: r.index, Type: raft.LogCommand, Data: data})
	cmds, _ := fsm.DecodeBatch(data)
	r.batches = append(r.batches, len(cmds))
	return future{resp: resp, idx: r.index}
}

func release(id string) fsm.Command {
	return fsm.Command{Type: fsm.CmdRelease, RequestID: id, Release: &fsm.ReleaseCmd{ID: id}}
}

func TestCommandsArrivingDuringAWriteShareTheNextEntry(t *testing.T) {
	fr := &fakeRaft{f: fsm.New(0), delay: 20 * time.Millisecond}
	p := New(fr, Config{MaxBatch: 64, MaxInflight: 1})
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Propose(context.Background(), release(string(rune('a'+i%26))+string(rune('a'+i/26))))
			if err != nil {
				errs <- err
				return
			}
			if res.Err() == nil {
				errs <- errors.New("release of a missing reservation succeeded")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total, biggest := 0, 0
	for _, n := range fr.batches {
		total += n
		biggest = max(biggest, n)
		if n > 64 {
			t.Fatalf("batch of %d over MaxBatch", n)
		}
	}
	if total != 200 {
		t.Fatalf("%d commands applied, want 200", total)
	}
	if len(fr.batches) >= 200 || biggest < 2 {
		t.Fatalf("no batching: %d entries for 200 commands", len(fr.batches))
	}
	t.Logf("200 commands in %d entries (largest %d)", len(fr.batches), biggest)
}

func TestRaftErrorsAreClassified(t *testing.T) {
	cases := map[error]error{
		raft.ErrNotLeader:        ErrNotLeader,
		raft.ErrEnqueueTimeout:   ErrNotLeader,
		raft.ErrLeadershipLost:   ErrUnknownOutcome,
		raft.ErrRaftShutdown:     ErrUnknownOutcome,
		raft.ErrAbortedByRestore: ErrUnknownOutcome,
	}
	for raftErr, want := range cases {
		p := New(&fakeRaft{f: fsm.New(0), err: raftErr}, Config{})
		_, err := p.Propose(context.Background(), release("x"))
		p.Close()
		if !errors.Is(err, want) {
			t.Errorf("%v: got %v, want %v", raftErr, err, want)
		}
	}
}

func TestGivingUpAfterEnqueueIsAnUnknownOutcome(t *testing.T) {
	fr := &fakeRaft{f: fsm.New(0), delay: 200 * time.Millisecond}
	p := New(fr, Config{})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Propose(ctx, release("slow")); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v, want ErrUnknownOutcome", err)
	}
}

func TestClosedProposerRefuses(t *testing.T) {
	p := New(&fakeRaft{f: fsm.New(0)}, Config{})
	p.Close()
	if _, err := p.Propose(context.Background(), release("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}
