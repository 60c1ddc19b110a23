package agentsvc

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/proto"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// live opens a's Live stream and says hello; the stream's end arrives on
// the returned channel.
func (h *harness) live(a *agent) (*liveStream, <-chan error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.mustAuthed(a, pb.Agent_Live_FullMethodName))
	ls := &liveStream{ctx: ctx, replies: make(chan *pb.LiveReply, 64), requests: make(chan *pb.LiveRequest, 64)}
	ls.replies <- &pb.LiveReply{Node: a.node}
	errc, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		errc <- h.s.Live(ls)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
	synctest.Wait()
	return ls, errc
}

// chunks reads a query's answer to its end.
func chunks(ch <-chan Chunk) (data string, last Chunk) {
	for c := range ch {
		data += string(c.Data)
		last = c
	}
	return data, last
}

func env(names ...string) *pb.LiveRequest {
	return &pb.LiveRequest{Kind: LiveReadEnv, Vmid: 100, Env: &pb.EnvArgs{Names: names}}
}

// TestQueryGoesToTheAgentAndBack: a request reaches the node's Live
// stream under an ID of its own, and the replies of that ID come back in
// order until the last; an agent's failure keeps its kind.
func TestQueryGoesToTheAgentAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		if _, err := h.s.Query(context.Background(), "pve1", env("A")); !problem.Is(err, problem.Unavailable) {
			t.Fatalf("a node without a stream: %v", err)
		}
		ls, _ := h.live(a)
		if !h.s.LiveConnected("pve1") {
			t.Fatal("pve1's stream is not known")
		}
		ch, err := h.s.Query(context.Background(), "pve1", &pb.LiveRequest{Kind: LiveAppLogs, Vmid: 100, Logs: &pb.LogsArgs{Tail: 10}})
		if err != nil {
			t.Fatal(err)
		}
		req := <-ls.requests
		if req.Id == "" || req.Kind != LiveAppLogs || req.Vmid != 100 || req.Logs.Tail != 10 {
			t.Fatalf("the agent got %v", req)
		}
		ls.replies <- &pb.LiveReply{Id: "someone else's", Data: []byte("no")}
		ls.replies <- &pb.LiveReply{Id: req.Id, Data: []byte("one\n")}
		ls.replies <- &pb.LiveReply{Id: req.Id, Data: []byte("two\n"), End: true}
		if data, last := chunks(ch); data != "one\ntwo\n" || last.Err != nil {
			t.Fatalf("answer %q, last %+v", data, last)
		}

		ch, _ = h.s.Query(context.Background(), "pve1", env("A"))
		req = <-ls.requests
		ls.replies <- &pb.LiveReply{Id: req.Id, End: true, Error: "container 100 is stopped", ErrorKind: string(taskspec.FailNotRunning)}
		if _, last := chunks(ch); !problem.Is(last.Err, problem.Conflict) {
			t.Fatalf("a stopped container's answer: %v, want a conflict", last.Err)
		}
	})
}

// TestQueryLimits: requests out of bounds are refused before they reach
// the agent; an agent that does not answer is given up after
// LiveReadTimeout (and told to stop); a node answers LiveMaxPerNode
// requests at once; an answer over LiveMaxBytes is cut.
func TestQueryLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		ls, _ := h.live(a)
		for name, req := range map[string]*pb.LiveRequest{
			"no tail":   {Kind: LiveAppLogs, Logs: &pb.LogsArgs{}},
			"long tail": {Kind: LiveAppLogs, Logs: &pb.LogsArgs{Tail: LiveMaxLines + 1}},
			"no names":  env(),
			"a kind":    {Kind: "shell"},
		} {
			if _, err := h.s.Query(context.Background(), "pve1", req); !problem.Is(err, problem.Invalid) {
				t.Errorf("%s: %v, want invalid", name, err)
			}
		}

		start := time.Now()
		ch, _ := h.s.Query(context.Background(), "pve1", env("A"))
		req := <-ls.requests
		_, last := chunks(ch)
		if !problem.Is(last.Err, problem.Unavailable) || time.Since(start) != LiveReadTimeout {
			t.Fatalf("no answer: %v after %v", last.Err, time.Since(start))
		}
		if c := <-ls.requests; c.Kind != liveCancel || c.Id != req.Id {
			t.Fatalf("after the timeout the agent got %v, want a cancel of %s", c, req.Id)
		}
		synctest.Wait() // the request gives its slot back after the cancel

		ctx, cancel := context.WithCancel(context.Background())
		var open []<-chan Chunk
		for range LiveMaxPerNode {
			ch, err := h.s.Query(ctx, "pve1", env("A"))
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, ch)
			<-ls.requests
		}
		if _, err := h.s.Query(context.Background(), "pve1", env("A")); !problem.Is(err, problem.Unavailable) {
			t.Fatalf("request %d at once: %v, want unavailable", LiveMaxPerNode+1, err)
		}
		cancel()
		for _, ch := range open {
			if _, last := chunks(ch); !problem.Is(last.Err, problem.Unavailable) {
				t.Fatalf("a cancelled request ended with %v", last.Err)
			}
		}
		for range LiveMaxPerNode {
			<-ls.requests // the cancels
		}
		synctest.Wait()
		ch, err := h.s.Query(context.Background(), "pve1", env("A"))
		if err != nil {
			t.Fatalf("after the cancelled requests ended: %v", err)
		}
		req = <-ls.requests
		big := []byte(strings.Repeat("x", LiveMaxBytes/2+1))
		ls.replies <- &pb.LiveReply{Id: req.Id, Data: big}
		ls.replies <- &pb.LiveReply{Id: req.Id, Data: big}
		data, last := chunks(ch)
		if len(data) != LiveMaxBytes || !last.Truncated {
			t.Fatalf("an answer over the bound: %d bytes, truncated %v", len(data), last.Truncated)
		}
	})
}

// TestNewerLiveStreamReplacesTheOld: a node's second stream takes over;
// the first ends (Aborted) and its pending requests end unavailable; a
// stream ends at the first recheck after this server stops leading.
func TestNewerLiveStreamReplacesTheOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		old, oldErr := h.live(a)
		ch, _ := h.s.Query(context.Background(), "pve1", env("A"))
		<-old.requests
		_, newErr := h.live(a)
		wantCode(t, "the replaced stream", <-oldErr, codes.Aborted)
		if _, last := chunks(ch); !problem.Is(last.Err, problem.Unavailable) {
			t.Fatalf("a request on the replaced stream ended with %v", last.Err)
		}
		if !h.s.LiveConnected("pve1") {
			t.Fatal("the newer stream is not known")
		}
		h.b.follower.Store(true)
		time.Sleep(liveRecheck)
		synctest.Wait()
		select {
		case err := <-newErr:
			if !proto.IsNotLeader(err) {
				t.Fatalf("the stream ended with %v, want not leader", err)
			}
		default:
			t.Fatal("the stream outlived the leadership")
		}
		if h.s.LiveConnected("pve1") {
			t.Fatal("an ended stream is still known")
		}
	})
}
