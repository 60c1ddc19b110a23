package agentsvc

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// The live channel (proto/live.proto): each agent keeps a Live stream open
// to the leader, and the leader sends it requests whose answers do not go
// through Raft, an app's logs and the values of its .env. Nothing of an
// answer is stored or logged here: it goes from the stream to the caller
// of Query.

// Kinds of live requests.
const (
	LiveAppLogs = "app_logs"
	LiveReadEnv = "read_env"
	liveCancel  = "cancel"
)

// Bounds of the live channel. The agent enforces the same ones; the
// leader's are what a caller can rely on.
const (
	// LiveDefaultLines and LiveMaxLines bound a logs request's tail.
	LiveDefaultLines = 100
	LiveMaxLines     = 5000
	// LiveMaxBytes bounds an answer that does not follow; a longer one
	// is cut (Chunk.Truncated).
	LiveMaxBytes = 1 << 20
	// LiveReadTimeout bounds an answer that does not follow, and
	// LiveFollowMax one that does.
	LiveReadTimeout = 10 * time.Second
	LiveFollowMax   = time.Hour
	// LiveMaxPerNode bounds the requests a node answers at once.
	LiveMaxPerNode = 8
	// liveRecheck is how often an open stream checks that this server
	// still leads and its node is still enrolled.
	liveRecheck = 2 * time.Second
	// liveBuffer is the chunks an answer may have in flight to a slow
	// reader before the request is cancelled.
	liveBuffer = 64
)

// Chunk is a piece of a live answer. The last one a channel carries
// before it closes has Err set when the request failed, and Truncated
// when a bound cut the answer short.
type Chunk struct {
	Data      []byte
	Values    []*pb.EnvValue
	Truncated bool
	Err       error
}

// liveLinks are the Live streams open on this server, by node.
type liveLinks struct {
	mu    sync.Mutex
	conns map[string]*liveConn
}

// liveConn is one agent's Live stream.
type liveConn struct {
	node     string
	stream   pb.Agent_LiveServer
	sendMu   sync.Mutex
	sem      chan struct{}
	replaced chan struct{}

	mu      sync.Mutex
	closed  bool
	pending map[string]*liveQuery
}

type liveQuery struct {
	ch     chan Chunk
	follow bool
	bytes  int
	done   chan struct{} // closed when the query is over
}

func (l *liveLinks) add(c *liveConn) {
	l.mu.Lock()
	old := l.conns[c.node]
	l.conns[c.node] = c
	l.mu.Unlock()
	if old != nil {
		close(old.replaced)
	}
}

func (l *liveLinks) remove(c *liveConn) {
	l.mu.Lock()
	if l.conns[c.node] == c {
		delete(l.conns, c.node)
	}
	l.mu.Unlock()
	c.close(problem.E(problem.Unavailable, "the agent of node %s disconnected", c.node))
}

func (l *liveLinks) get(node string) *liveConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[node]
}

// send writes one request on the stream (a stream is not safe for
// concurrent sends).
func (c *liveConn) send(req *pb.LiveRequest) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.stream.Send(req)
}

// close ends every query of the stream with err.
func (c *liveConn) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for id, q := range c.pending {
		c.finishLocked(id, q, Chunk{Err: err})
	}
}

// finishLocked delivers the last chunk (if there is room; an error is
// more useful than the data it would push out) and closes the query.
func (c *liveConn) finishLocked(id string, q *liveQuery, last Chunk) {
	if _, ok := c.pending[id]; !ok {
		return
	}
	delete(c.pending, id)
	select {
	case q.ch <- last:
	default:
		if last.Err != nil || last.Truncated {
			select {
			case <-q.ch: // drop the oldest chunk for it
			default:
			}
			q.ch <- last
		}
	}
	close(q.ch)
	close(q.done)
}

// deliver hands one reply to its query. A reader that has fallen
// liveBuffer chunks behind, or an answer over LiveMaxBytes, ends the
// query and cancels it on the agent.
func (c *liveConn) deliver(r *pb.LiveReply) {
	c.mu.Lock()
	q, ok := c.pending[r.Id]
	if !ok {
		c.mu.Unlock()
		return // a query that is over (cancelled, timed out)
	}
	ch := Chunk{Data: r.Data, Values: r.Values, Truncated: r.Truncated}
	if r.Error != "" {
		ch.Err = liveError(taskspec.Failure(r.ErrorKind), r.Error)
	}
	q.bytes += len(r.Data)
	cancel := false
	switch {
	case r.End:
		c.finishLocked(r.Id, q, ch)
	case !q.follow && q.bytes > LiveMaxBytes:
		ch.Data, ch.Truncated = ch.Data[:max(0, len(ch.Data)-(q.bytes-LiveMaxBytes))], true
		c.finishLocked(r.Id, q, ch)
		cancel = true
	default:
		select {
		case q.ch <- ch:
		default:
			c.finishLocked(r.Id, q, Chunk{Err: problem.E(problem.Unavailable, "the reader of this answer fell behind; it was stopped")})
			cancel = true
		}
	}
	c.mu.Unlock()
	if cancel {
		_ = c.send(&pb.LiveRequest{Id: r.Id, Kind: liveCancel})
	}
}

// liveError turns an agent's failure into a problem: a container that is
// not running or not there is a conflict with the app's state, a refusal
// or bad argument is invalid, anything else leaves the node unable to
// answer now.
func liveError(kind taskspec.Failure, msg string) error {
	switch kind {
	case taskspec.FailNotRunning, taskspec.FailNotFound, taskspec.FailLocked:
		return problem.E(problem.Conflict, "the app's container cannot answer: %s", msg)
	case taskspec.FailInvalid:
		return problem.E(problem.Invalid, "%s", msg)
	}
	return problem.E(problem.Unavailable, "the node could not answer: %s", msg)
}

// Live serves an agent's Live stream on the leader: the first message
// names the node (it must be the certificate's); the stream then carries
// requests down and answers up until the agent leaves, this server stops
// leading, the node is removed, or the node opens a newer stream.
func (s *Service) Live(stream pb.Agent_LiveServer) error {
	ctx := stream.Context()
	if err := s.leaderOnly(ctx); err != nil {
		return err
	}
	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	if err := speaksFor(ctx, hello.Node); err != nil {
		return err
	}
	c := &liveConn{node: hello.Node, stream: stream, sem: make(chan struct{}, LiveMaxPerNode),
		replaced: make(chan struct{}), pending: map[string]*liveQuery{}}
	s.links.add(c)
	defer s.links.remove(c)
	recvd := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvd <- err
				return
			}
			c.deliver(r)
		}
	}()
	leaf := callerCert(ctx)
	// Leadership and enrolment are checked every liveRecheck, not on
	// every change of the state: a stream per node wakes for nothing
	// else, however busy the cluster is.
	tick := time.NewTicker(liveRecheck)
	defer tick.Stop()
	for {
		select {
		case err := <-recvd:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-c.replaced:
			return status.Error(codes.Aborted, "a newer Live stream of this node replaced this one")
		case <-tick.C:
		}
		if err := s.leaderOnly(ctx); err != nil {
			return err
		}
		// A node removed while its stream is open loses the stream.
		if err := s.enrolled(leaf); err != nil {
			return err
		}
	}
}

// Query sends a live request to a node's agent and returns its answer as
// it comes. The channel closes after the last chunk. The request ends when
// the answer does, when ctx ends (the agent is told to stop), or when its
// bound runs out: LiveReadTimeout, or LiveFollowMax for a followed log.
// Errors: Unavailable when the node's agent is not connected to this
// server or is answering LiveMaxPerNode requests already; Invalid for a
// request out of bounds.
func (s *Service) Query(ctx context.Context, node string, req *pb.LiveRequest) (<-chan Chunk, error) {
	follow := false
	switch req.Kind {
	case LiveAppLogs:
		if req.Logs == nil || req.Logs.Tail < 1 || req.Logs.Tail > LiveMaxLines {
			return nil, problem.E(problem.Invalid, "logs: tail must be 1-%d", LiveMaxLines)
		}
		follow = req.Logs.Follow
	case LiveReadEnv:
		if req.Env == nil || len(req.Env.Names) == 0 {
			return nil, problem.E(problem.Invalid, "read_env: no names")
		}
	default:
		return nil, problem.E(problem.Invalid, "live request kind %q is not app_logs or read_env", req.Kind)
	}
	c := s.links.get(node)
	if c == nil {
		return nil, problem.E(problem.Unavailable, "the agent of node %s is not connected to this server", node)
	}
	select {
	case c.sem <- struct{}{}:
	default:
		return nil, problem.E(problem.Unavailable, "node %s is answering %d live requests already; retry later", node, LiveMaxPerNode)
	}
	bound := LiveReadTimeout
	if follow {
		bound = LiveFollowMax
	}
	qctx, cancel := context.WithTimeout(ctx, bound)
	id := s.cfg.NewID("live_")
	q := &liveQuery{ch: make(chan Chunk, liveBuffer), follow: follow, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		<-c.sem
		return nil, problem.E(problem.Unavailable, "the agent of node %s disconnected", node)
	}
	c.pending[id] = q
	c.mu.Unlock()
	sent := &pb.LiveRequest{Id: id, Kind: req.Kind, Vmid: req.Vmid, Logs: req.Logs, Env: req.Env}
	if err := c.send(sent); err != nil {
		c.mu.Lock()
		c.finishLocked(id, q, Chunk{})
		c.mu.Unlock()
		cancel()
		<-c.sem
		return nil, problem.E(problem.Unavailable, "the agent of node %s did not take the request", node)
	}
	go func() {
		defer func() { <-c.sem }()
		defer cancel()
		select {
		case <-q.done:
			return
		case <-qctx.Done():
		}
		var err error
		if errors.Is(qctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			if follow {
				err = nil // a followed log ends at its bound like at its end
			} else {
				err = problem.E(problem.Unavailable, "node %s did not answer within %s", node, bound)
			}
		} else {
			err = problem.E(problem.Unavailable, "the request was cancelled")
		}
		c.mu.Lock()
		c.finishLocked(id, q, Chunk{Err: err, Truncated: err == nil})
		c.mu.Unlock()
		_ = c.send(&pb.LiveRequest{Id: id, Kind: liveCancel})
	}()
	return q.ch, nil
}

// LiveConnected reports whether a node's agent has its Live stream open
// on this server.
func (s *Service) LiveConnected(node string) bool { return s.links.get(node) != nil }
