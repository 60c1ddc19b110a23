package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// The live channel (proto/live.proto): beside the Work stream, the agent
// keeps a Live stream open to the leader and answers its requests, an
// app's logs and the values of its .env, without Raft. Nothing of an
// answer is logged: the log says which request ran, never what it read.

// Bounds of the agent's live answers; the leader's (coordinator/agentsvc)
// are the same.
const (
	liveMaxLines    = 5000
	liveMaxBytes    = 1 << 20
	liveReadTimeout = 10 * time.Second
	liveFollowMax   = time.Hour
	liveMaxRunning  = 8
	// liveChunk is the size at which buffered lines are sent, and
	// liveFlush how long a line may wait in the buffer.
	liveChunk = 32 << 10
	liveFlush = 100 * time.Millisecond
	// liveMaxNames bounds the variables one read_env asks for.
	liveMaxNames = 100
)

// live runs the agent's side of the Live stream.
type live struct {
	a      *Agent
	active atomic.Int64
	sem    chan struct{}
}

func newLive(a *Agent) *live { return &live{a: a, sem: make(chan struct{}, liveMaxRunning)} }

// LiveActive is the number of live requests the agent is answering.
func (a *Agent) LiveActive() int { return int(a.live.active.Load()) }

// loop keeps the Live stream open on the leader, reconnecting with
// backoff like the Work stream.
func (l *live) loop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		addr := l.a.servers.pick(0)
		start := time.Now()
		err := l.stream(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		l.a.log.Debug("live stream ended", "coordinator", addr, "err", err)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond // it was up: start over
		}
		wait := backoff
		backoff = min(backoff*2, 2*time.Second)
		if status.Code(err) == codes.PermissionDenied {
			wait = refusedRetry // the work loop says why
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (l *live) stream(ctx context.Context, addr string) error {
	conn, err := l.a.conn(addr)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	st, err := pb.NewAgentClient(conn).Live(sctx)
	if err != nil {
		return err
	}
	var sendMu sync.Mutex
	send := func(r *pb.LiveReply) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(r)
	}
	if err := send(&pb.LiveReply{Node: l.a.cfg.Node}); err != nil {
		return err
	}
	var mu sync.Mutex
	running := map[string]context.CancelFunc{}
	for {
		req, err := st.Recv()
		if err != nil {
			l.a.redirect(err, st.Trailer(), addr)
			return err
		}
		if req.Kind == "cancel" {
			mu.Lock()
			if stop := running[req.Id]; stop != nil {
				stop()
			}
			mu.Unlock()
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default:
			_ = send(&pb.LiveReply{Id: req.Id, End: true, ErrorKind: string(taskspec.FailBusy), Error: fmt.Sprintf("this node answers %d live requests at once", liveMaxRunning)})
			continue
		}
		bound := liveReadTimeout
		if req.Logs != nil && req.Logs.Follow {
			bound = liveFollowMax
		}
		rctx, stop := context.WithTimeout(sctx, bound)
		mu.Lock()
		running[req.Id] = stop
		mu.Unlock()
		l.active.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.active.Add(-1)
			defer func() { <-l.sem }()
			defer func() {
				stop()
				mu.Lock()
				delete(running, req.Id)
				mu.Unlock()
			}()
			l.answer(rctx, req, send)
		}()
	}
}

// answer runs one request and sends its answer, ending with end set.
func (l *live) answer(ctx context.Context, req *pb.LiveRequest, send func(*pb.LiveReply) error) {
	log := l.a.log.With("live", req.Id, "kind", req.Kind, "vmid", req.Vmid)
	log.Debug("live request")
	end := &pb.LiveReply{Id: req.Id, End: true}
	err := l.a.cfg.Policy.CheckLive(ctx, l.a.cfg.Runtime, req)
	if err == nil {
		switch req.Kind {
		case "app_logs":
			end.Truncated, err = l.logs(ctx, req, send)
		case "read_env":
			end.Values, err = l.readEnv(ctx, req)
		}
	}
	if err != nil {
		end.Error, end.ErrorKind = err.Error(), string(failureOf(err))
		log.Debug("live request failed", "kind", end.ErrorKind, "err", err)
	}
	_ = send(end)
}

// errBound stops a command whose answer reached a bound.
var errBound = errors.New("answer bound reached")

// logs sends `docker compose logs` of the app's project as chunks of
// whole lines, every liveChunk bytes or liveFlush. An answer that does
// not follow stops at liveMaxBytes (truncated).
func (l *live) logs(ctx context.Context, req *pb.LiveRequest, send func(*pb.LiveReply) error) (truncated bool, err error) {
	args := req.Logs
	argv := []string{"docker", "compose", "--project-directory", AppDir, "logs", "--no-color", "--timestamps", "--tail", fmt.Sprint(args.Tail)}
	if args.Since != "" {
		argv = append(argv, "--since", args.Since)
	}
	if args.Follow {
		argv = append(argv, "--follow")
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	total := 0
	var sendErr error
	flush := func() {
		// mu held
		if buf.Len() == 0 || sendErr != nil {
			return
		}
		sendErr = send(&pb.LiveReply{Id: req.Id, Data: bytes.Clone(buf.Bytes())})
		buf.Reset()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(liveFlush)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				flush()
				mu.Unlock()
			}
		}
	}()
	res, err := l.a.cfg.Runtime.ExecStream(ctx, int(req.Vmid), argv, func(line string) error {
		mu.Lock()
		defer mu.Unlock()
		if !args.Follow && total+len(line)+1 > liveMaxBytes {
			truncated = true
			return errBound
		}
		total += len(line) + 1
		buf.WriteString(line)
		buf.WriteByte('\n')
		if buf.Len() >= liveChunk {
			flush()
		}
		return sendErr
	})
	mu.Lock()
	flush()
	serr := sendErr
	mu.Unlock()
	switch {
	case serr != nil:
		return truncated, serr
	case errors.Is(err, errBound):
		return true, nil
	case err != nil && args.Follow && ctx.Err() != nil:
		return true, nil // cancelled, or the follow bound: not a failure
	case err != nil:
		return truncated, err
	case res.Code != 0:
		return truncated, &pve.Error{Text: fmt.Sprintf("docker compose logs: exit %d: %s", res.Code, lastLine(res.Stderr))}
	}
	return truncated, nil
}

// readEnv reads the app's .env and returns the requested variables that
// it holds, and nothing else of it. The file goes through a pipe, never
// a file on the node, and is not logged.
func (l *live) readEnv(ctx context.Context, req *pb.LiveRequest) ([]*pb.EnvValue, error) {
	var buf bytes.Buffer
	res, err := l.a.cfg.Runtime.ExecStream(ctx, int(req.Vmid), []string{"cat", req.Env.Path}, func(line string) error {
		if buf.Len()+len(line)+1 > liveMaxBytes {
			return errBound
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		return nil
	})
	defer clear(buf.Bytes())
	switch {
	case errors.Is(err, errBound):
		return nil, &pve.Error{Kind: pve.ErrInvalid, Text: fmt.Sprintf("%s is larger than %d bytes", req.Env.Path, liveMaxBytes)}
	case err != nil:
		return nil, err
	case res.Code != 0:
		return nil, &pve.Error{Kind: pve.ErrNotFound, Text: fmt.Sprintf("cat %s: %s", req.Env.Path, lastLine(res.Stderr))}
	}
	vars, err := dotenv.Parse(buf.Bytes())
	if err != nil {
		// The parser's message may quote the file: say only where.
		return nil, &pve.Error{Text: req.Env.Path + " does not parse as a .env file"}
	}
	out := make([]*pb.EnvValue, 0, len(req.Env.Names))
	for _, n := range req.Env.Names {
		if v, ok := vars[n]; ok {
			out = append(out, &pb.EnvValue{Name: n, Value: v})
		}
	}
	return out, nil
}

// lastLine is the last non-empty line of a command's stderr, cut to 300
// bytes.
func lastLine(s string) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if i := bytes.LastIndexByte([]byte(s), '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
