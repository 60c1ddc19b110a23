package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/proximity-ve/proximity/internal/testutil"
)

// The linearizability check models the registry's hostname table
// (testutil.RegistryModel).
type (
	regInput  = testutil.RegInput
	regOutput = testutil.RegOutput
)

var registryModel = testutil.RegistryModel

// checkHistory runs porcupine and saves the visualization when the history
// is not linearizable.
func checkHistory(t *testing.T, ops []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	m := registryModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(m, ops, 60*time.Second)
	if res != porcupine.Ok {
		path := t.ArtifactDir() + "/linearizability.html"
		if err := porcupine.VisualizePath(m, info, path); err != nil {
			t.Logf("visualize: %v", err)
		} else {
			t.Logf("visualization of the history: %s", path)
		}
	}
	return res
}

// TestRegistryModelRejectsStaleRead proves the check can fail: a lookup
// that misses a reservation acknowledged before it began is caught.
func TestRegistryModelRejectsStaleRead(t *testing.T) {
	good := []porcupine.Operation{
		{ClientId: 0, Input: regInput{Op: "reserve", Host: "a"}, Call: 0, Output: regOutput{Status: "ok", ID: "r1"}, Return: 10},
		{ClientId: 1, Input: regInput{Op: "lookup", Host: "a"}, Call: 20, Output: regOutput{ID: "r1"}, Return: 30},
		{ClientId: 1, Input: regInput{Op: "release", Host: "a", ID: "r1"}, Call: 40, Output: regOutput{Status: "ok"}, Return: 50},
		{ClientId: 0, Input: regInput{Op: "reserve", Host: "a"}, Call: 45, Output: regOutput{Status: "unknown"}, Return: 100},
		{ClientId: 1, Input: regInput{Op: "lookup", Host: "a"}, Call: 60, Output: regOutput{ID: "r9"}, Return: 70},
	}
	if res, _ := porcupine.CheckOperationsVerbose(registryModel.ToModel(), good, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("a linearizable history was rejected: %v", res)
	}
	stale := []porcupine.Operation{
		{ClientId: 0, Input: regInput{Op: "reserve", Host: "a"}, Call: 0, Output: regOutput{Status: "ok", ID: "r1"}, Return: 10},
		{ClientId: 1, Input: regInput{Op: "lookup", Host: "a"}, Call: 20, Output: regOutput{ID: ""}, Return: 30},
	}
	if res := checkHistory(t, stale); res != porcupine.Illegal {
		t.Fatalf("a stale read was accepted: %v", res)
	}
	double := []porcupine.Operation{
		{ClientId: 0, Input: regInput{Op: "reserve", Host: "a"}, Call: 0, Output: regOutput{Status: "ok", ID: "r1"}, Return: 10},
		{ClientId: 1, Input: regInput{Op: "reserve", Host: "a"}, Call: 5, Output: regOutput{Status: "ok", ID: "r2"}, Return: 15},
	}
	if res, _ := porcupine.CheckOperationsVerbose(registryModel.ToModel(), double, 10*time.Second); res != porcupine.Illegal {
		t.Fatalf("two holders of one hostname were accepted: %v", res)
	}
}

// TestLinearizableRegistryWithLeaderKills records reserve, release and
// lookup operations from concurrent clients through all servers while the
// leader is killed and restarted, and checks the history with porcupine.
func TestLinearizableRegistryWithLeaderKills(t *testing.T) {
	tc := newTestCluster(t, 3)
	const clients, hosts, minOps = 12, 6, 200
	// The load lasts loadFor, across both kills, and on until the history
	// holds minOps operations (a loaded machine answers fewer per second).
	loadFor, loadAtMost := 6*time.Second, 60*time.Second
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var (
		mu   sync.Mutex
		ops  []porcupine.Operation
		seen = map[string]string{} // hostname → an ID seen for it
	)
	record := func(client int, in regInput, call int64, out regOutput) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: now()})
		if out.ID != "" {
			seen[in.Host] = out.ID
		}
	}
	var down sync.Map
	pick := func() int {
		for {
			i := rand.IntN(len(tc.nodes))
			if _, isDown := down.Load(i); !isDown {
				return i
			}
		}
	}
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ops) >= minOps
	}
	// try runs one attempt; definite is false when the outcome is unknown.
	try := func(in regInput) (regOutput, bool) {
		out, definite, unexpected := testutil.RegistryAttempt(in, func(method, path string, body any, key string) (int, []byte, error) {
			var hdr map[string]string
			if key != "" {
				hdr = map[string]string{"Idempotency-Key": key}
			}
			var raw json.RawMessage
			st, err := tc.call(pick(), method, path, tc.token, body, hdr, &raw)
			return st, raw, err
		})
		if unexpected != "" {
			t.Errorf("%s", unexpected)
		}
		return out, definite
	}

	type open struct {
		client int
		in     regInput
		call   int64
	}
	var unresolved []open
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Since(start) < loadFor || !enough() && time.Since(start) < loadAtMost; n++ {
				in := regInput{Host: fmt.Sprintf("lin-%d", rand.IntN(hosts)), Rid: fmt.Sprintf("lin-%d-%d", c, n)}
				switch r := rand.IntN(10); {
				case r < 4:
					in.Op = "reserve"
				case r < 7:
					in.Op = "lookup"
				default:
					in.Op = "release"
					mu.Lock()
					in.ID = seen[in.Host]
					mu.Unlock()
					if in.ID == "" {
						in.Op = "lookup"
					}
				}
				call := now()
				// Writes are retried with the same request ID, which makes
				// the retry the same operation; reads are simply retried.
				var out regOutput
				definite := false
				for attempt := 0; attempt < 20 && !definite; attempt++ {
					if out, definite = try(in); !definite {
						time.Sleep(50 * time.Millisecond)
					}
				}
				if !definite {
					if in.Op == "lookup" {
						continue // a read with no answer constrains nothing
					}
					mu.Lock()
					unresolved = append(unresolved, open{c, in, call})
					mu.Unlock()
					continue
				}
				record(c, in, call, out)
			}
		}()
	}
	for _, at := range []time.Duration{1500 * time.Millisecond, 3500 * time.Millisecond} {
		time.Sleep(time.Until(start.Add(at)))
		l := tc.waitLeader()
		down.Store(l, true)
		tc.kill(l)
		time.Sleep(1200 * time.Millisecond)
		tc.start(l)
		down.Delete(l)
	}
	wg.Wait()
	// Writes still without an answer are resolved now that the cluster is
	// whole: the same request ID answers with what happened. One that never
	// answers stays unknown and is modelled as such.
	tc.waitLeader()
	for _, o := range unresolved {
		var out regOutput
		definite := false
		for attempt := 0; attempt < 50 && !definite; attempt++ {
			out, definite = try(o.in)
		}
		record(o.client, o.in, o.call, out)
	}
	kinds := map[string]int{}
	for _, op := range ops {
		kinds[op.Input.(regInput).Op+"/"+op.Output.(regOutput).Status]++
	}
	t.Logf("%d operations (%d resolved after the faults): %v", len(ops), len(unresolved), kinds)
	if len(ops) < minOps {
		t.Fatalf("only %d operations recorded; the history proves little", len(ops))
	}
	if res := checkHistory(t, ops); res != porcupine.Ok {
		t.Fatalf("history is not linearizable: %v", res)
	}
}
