// Package proposer turns commands into Raft log entries on the leader with
// group commit: the commands that arrive while earlier entries are being
// written are gathered into one batch entry, so one disk write and one
// replication round carry many commands.
//
// Propose answers with the command's fsm.Result once the entry is
// committed and applied on this server, or with one of two sentinels the
// caller branches on:
//
//   - ErrNotLeader: the command was certainly not applied; send it to the
//     leader.
//   - ErrUnknownOutcome: it may or may not have been applied (leadership
//     was lost with the entry in flight, the server shut down, the caller
//     gave up waiting). Retrying with the same request ID is safe: the
//     FSM's dedup table answers with the first result if it was applied.
package proposer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// Sentinel errors; see the package comment.
var (
	ErrNotLeader      = errors.New("not the leader")
	ErrUnknownOutcome = errors.New("outcome unknown: retry with the same request ID")
	ErrClosed         = errors.New("proposer closed")
)

// Applier is the part of *raft.Raft the proposer uses.
type Applier interface {
	Apply(cmd []byte, timeout time.Duration) raft.ApplyFuture
}

// Config tunes batching.
type Config struct {
	// MaxBatch is the most commands in one entry.
	MaxBatch int
	// MaxInflight is how many entries may be in flight at once. Raft
	// pipelines them; more batches in flight trade batch size for latency.
	MaxInflight int
	// EnqueueTimeout bounds how long Raft may take to accept an entry.
	EnqueueTimeout time.Duration
	// OnBatch, if set, observes each batch's size and commit latency.
	OnBatch func(size int, took time.Duration)
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{MaxBatch: 1024, MaxInflight: 1, EnqueueTimeout: 5 * time.Second}
}

type pending struct {
	cmd  fsm.Command
	res  fsm.Result
	err  error
	done chan struct{}
}

// Proposer batches commands into Raft entries.
type Proposer struct {
	r    Applier
	cfg  Config
	in   chan *pending
	sem  chan struct{}
	quit chan struct{}
	dead chan struct{}
}

// New starts a proposer. Close stops it.
func New(r Applier, cfg Config) *Proposer {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultConfig().MaxBatch
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultConfig().MaxInflight
	}
	if cfg.EnqueueTimeout <= 0 {
		cfg.EnqueueTimeout = DefaultConfig().EnqueueTimeout
	}
	p := &Proposer{
		r: r, cfg: cfg,
		in:   make(chan *pending, 4*cfg.MaxBatch),
		sem:  make(chan struct{}, cfg.MaxInflight),
		quit: make(chan struct{}),
		dead: make(chan struct{}),
	}
	go p.loop()
	return p
}

// Close stops the proposer. Commands not yet proposed fail with
// ErrNotLeader (or ErrClosed); commands in flight finish first.
func (p *Proposer) Close() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.dead
}

// Propose submits one command and waits for its result.
func (p *Proposer) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	pd := &pending{cmd: cmd, done: make(chan struct{})}
	select {
	case p.in <- pd:
	case <-p.quit:
		return fsm.Result{}, ErrClosed
	case <-ctx.Done():
		// Not enqueued: certainly not applied.
		return fsm.Result{}, fmt.Errorf("propose: %w", ctx.Err())
	}
	select {
	case <-pd.done:
		return pd.res, pd.err
	case <-p.dead:
		// The loop has ended and every batch it took has finished: a
		// command not answered by now was never taken.
		select {
		case <-pd.done:
			return pd.res, pd.err
		default:
			return fsm.Result{}, ErrClosed
		}
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, ctx.Err())
	}
}

func (p *Proposer) loop() {
	defer func() {
		// Wait for the batches in flight, so that when dead is closed
		// every command taken has its answer.
		for i := 0; i < cap(p.sem); i++ {
			p.sem <- struct{}{}
		}
		close(p.dead)
	}()
	for {
		// Take an in-flight slot first: while all slots are busy, commands
		// pile up in the channel and form the next batch.
		select {
		case p.sem <- struct{}{}:
		case <-p.quit:
			p.drain()
			return
		}
		var first *pending
		select {
		case first = <-p.in:
		case <-p.quit:
			<-p.sem
			p.drain()
			return
		}
		batch := []*pending{first}
	gather:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case pd := <-p.in:
				batch = append(batch, pd)
			default:
				break gather
			}
		}
		go p.commit(batch)
	}
}

func (p *Proposer) drain() {
	for {
		select {
		case pd := <-p.in:
			pd.err = ErrNotLeader
			close(pd.done)
		default:
			return
		}
	}
}

func (p *Proposer) commit(batch []*pending) {
	defer func() { <-p.sem }()
	start := time.Now()
	cmds := make([]fsm.Command, len(batch))
	for i, pd := range batch {
		cmds[i] = pd.cmd
	}
	data, err := fsm.EncodeBatch(cmds)
	if err != nil {
		finish(batch, nil, err)
		return
	}
	f := p.r.Apply(data, p.cfg.EnqueueTimeout)
	if err := f.Error(); err != nil {
		finish(batch, nil, classify(err))
		return
	}
	results, ok := f.Response().([]fsm.Result)
	if !ok || len(results) != len(batch) {
		finish(batch, nil, fmt.Errorf("propose: FSM answered %T for %d commands", f.Response(), len(batch)))
		return
	}
	if p.cfg.OnBatch != nil {
		p.cfg.OnBatch(len(batch), time.Since(start))
	}
	finish(batch, results, nil)
}

func finish(batch []*pending, results []fsm.Result, err error) {
	for i, pd := range batch {
		if err != nil {
			pd.err = err
		} else {
			pd.res = results[i]
		}
		close(pd.done)
	}
}

// classify maps Raft's apply errors onto the two outcomes callers handle.
func classify(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	default:
		// ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore and
		// anything else: the entry may have been committed.
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	}
}
