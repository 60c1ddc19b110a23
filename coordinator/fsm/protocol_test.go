package fsm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/internal/problem"
)

// entry encodes commands as the log entry at index.
func entry(t *testing.T, index uint64, cmds ...Command) *raft.Log {
	t.Helper()
	data, err := EncodeBatch(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}

// applyRecover applies an entry and returns the panic's message, if any.
func applyRecover(f *FSM, l *raft.Log) (res []Result, panicked string) {
	defer func() {
		if p := recover(); p != nil {
			panicked = fmt.Sprint(p)
		}
	}()
	return f.Apply(l).([]Result), ""
}

func digest(t *testing.T, f *FSM) string {
	t.Helper()
	d, _, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A type this version does not know, without the ignorable bit, stops
// every server at the same entry with the same message, before any
// command of the entry is applied: the servers' states stay identical.
func TestUnknownTypeStopsEveryServerAlike(t *testing.T) {
	const unknown CommandType = 0x7001
	log := []*raft.Log{
		entry(t, 1, reserveCmd("r1", "a", "one", "pve1", 1, false)),
		entry(t, 2, reserveCmd("r2", "b", "two", "pve1", 1, false)),
		entry(t, 3, reserveCmd("r3", "c", "three", "pve1", 1, false), Command{Type: unknown, RequestID: "new"}),
		entry(t, 4, reserveCmd("r4", "d", "four", "pve1", 1, false)),
	}
	var msgs, digests []string
	for range 2 {
		f := New(0)
		var msg string
		for _, l := range log {
			if _, msg = applyRecover(f, l); msg != "" {
				break
			}
		}
		if f.AppliedIndex() != 2 {
			t.Fatalf("applied up to %d, want to stop after 2", f.AppliedIndex())
		}
		f.Read(func(s *State) {
			if _, ok := s.Reservations["c"]; ok {
				t.Fatal("a command of the refused entry was applied")
			}
			if _, ok := s.Dedup["new"]; ok {
				t.Fatal("the unknown command is in the dedup table")
			}
		})
		msgs, digests = append(msgs, msg), append(digests, digest(t, f))
	}
	if !strings.Contains(msgs[0], "failed to apply raft log entry 3: unknown command type 28673") ||
		!strings.Contains(msgs[0], "upgrade this server") {
		t.Fatalf("panic %q", msgs[0])
	}
	if msgs[0] != msgs[1] || digests[0] != digests[1] {
		t.Fatalf("two servers differ: %q / %q, %s / %s", msgs[0], msgs[1], digests[0], digests[1])
	}
}

// An unknown type with the ignorable bit is skipped: no state change (not
// even the dedup table), a fixed result, and the entry's other commands
// applied; two servers end with the same digest, the same as a server
// that never saw the command.
func TestIgnorableUnknownTypeIsSkipped(t *testing.T) {
	const unknown = Ignorable | 0x7002
	with := []*raft.Log{
		entry(t, 1, reserveCmd("r1", "a", "one", "pve1", 1, false)),
		entry(t, 2, reserveCmd("r2", "b", "two", "pve1", 1, false), Command{Type: unknown, RequestID: "new"},
			reserveCmd("r3", "c", "three", "pve1", 1, false)),
		entry(t, 3, Command{Type: unknown, RequestID: "new2"}),
		entry(t, 4, reserveCmd("r4", "d", "four", "pve1", 1, false)),
	}
	without := []*raft.Log{
		with[0],
		entry(t, 2, reserveCmd("r2", "b", "two", "pve1", 1, false), reserveCmd("r3", "c", "three", "pve1", 1, false)),
		entry(t, 3),
		with[3],
	}
	run := func(log []*raft.Log) (*FSM, [][]Result) {
		f := New(0)
		var all [][]Result
		for _, l := range log {
			res, msg := applyRecover(f, l)
			if msg != "" {
				t.Fatalf("entry %d: panic %s", l.Index, msg)
			}
			all = append(all, res)
		}
		return f, all
	}
	a, resA := run(with)
	b, resB := run(with)
	c, _ := run(without)
	if digest(t, a) != digest(t, b) || digest(t, a) != digest(t, c) {
		t.Fatalf("digests differ: %s %s %s", digest(t, a), digest(t, b), digest(t, c))
	}
	ja, _ := json.Marshal(resA)
	jb, _ := json.Marshal(resB)
	if string(ja) != string(jb) {
		t.Fatalf("results differ:\n%v\n%v", resA, resB)
	}
	skip := resA[1][1]
	if skip.Err() == nil || problem.KindOf(skip.Err()) != problem.Unavailable || !strings.Contains(skip.ErrDetail, "skipped") || skip.Index != 2 {
		t.Fatalf("skipped result %+v", skip)
	}
	mustOK(t, resA[1][0])
	mustOK(t, resA[1][2])
	a.Read(func(s *State) {
		if len(s.Reservations) != 4 || s.Index != 4 {
			t.Fatalf("%d reservations at index %d", len(s.Reservations), s.Index)
		}
		if _, ok := s.Dedup["new"]; ok {
			t.Fatal("the skipped command is in the dedup table")
		}
	})
}

// A known type without its payload is refused as invalid, the same on
// every server; it never reaches the unknown-type path.
func TestKnownTypeWithoutPayload(t *testing.T) {
	for typ := range commandTypes {
		f := New(0)
		r := f.ApplyCommands(1, Command{Type: typ, RequestID: "x"})[0]
		if problem.KindOf(r.Err()) != problem.Invalid || !strings.Contains(r.ErrDetail, "without its payload") {
			t.Fatalf("type %s without payload: %+v", typ, r)
		}
	}
}

// The log's encoding is unchanged: an entry written by the releases before
// the ignorable bit (protocol 1) applies as it did.
func TestProtocolOneEntryApplies(t *testing.T) {
	f := New(0)
	raw := append([]byte{1}, `[{"type":1,"request_id":"r1","reserve":{"id":"a","hostname":"old","node":"pve1","public_ports":1,"ip":false,"owner":"o","created_at":"2026-01-02T03:04:05Z"}}]`...)
	res, msg := applyRecover(f, &raft.Log{Index: 7, Type: raft.LogCommand, Data: raw})
	if msg != "" {
		t.Fatal(msg)
	}
	mustOK(t, res[0])
	if res[0].Reservation.Hostname != "old" || res[0].Reservation.Index != 7 {
		t.Fatalf("%+v", res[0].Reservation)
	}
}

func TestDigest(t *testing.T) {
	a, b := New(0), New(0)
	if digest(t, a) != digest(t, b) {
		t.Fatal("two empty states differ")
	}
	apply(t, a, reserveCmd("r1", "a", "one", "pve1", 1, false))
	if digest(t, a) == digest(t, b) {
		t.Fatal("a reservation did not change the digest")
	}
	apply(t, b, reserveCmd("r1", "a", "one", "pve1", 1, false))
	if d, i, _ := a.Digest(); d != digest(t, b) || i != 1 || len(d) != 64 {
		t.Fatalf("digest %s at %d", d, i)
	}
}

func TestCheckProtocol(t *testing.T) {
	const (
		newType    CommandType = 0x7003
		newIgnored             = Ignorable | 0x7004
	)
	commandTypes[newType] = commandType{"test_new", ProtocolVersion + 1}
	commandTypes[newIgnored] = commandType{"test_new_ignorable", ProtocolVersion + 1}
	t.Cleanup(func() { delete(commandTypes, newType); delete(commandTypes, newIgnored) })

	upgraded := []ServerProtocol{{"c1", ProtocolVersion + 1}, {"c2", ProtocolVersion + 1}, {"c3", ProtocolVersion + 1}}
	oneOld := []ServerProtocol{{"c1", ProtocolVersion + 1}, {"c3", ProtocolVersion}, {"c2", ProtocolVersion + 1}}
	unreported := []ServerProtocol{{"c1", ProtocolVersion + 1}, {"c2", 0}, {"c3", ProtocolVersion + 1}}
	preFlag := []ServerProtocol{{"c1", ProtocolVersion + 1}, {"c2", BaseProtocol}, {"c3", IgnorableProtocol}}
	for _, tc := range []struct {
		typ     CommandType
		servers []ServerProtocol
		refused string
	}{
		{CmdReserve, nil, ""},
		{CmdReserve, []ServerProtocol{{"c1", 0}, {"c2", BaseProtocol}}, ""},
		{newType, upgraded, ""},
		{newType, oneOld, "the cluster is being upgraded: server c3 does not know command test_new yet"},
		{newType, unreported, "server c2 has not reported its version"},
		{newIgnored, oneOld, ""},
		{newIgnored, preFlag, "server c2 does not know command test_new_ignorable yet"},
		{0x7005, upgraded, "not known to this version"},
	} {
		err := CheckProtocol(tc.typ, tc.servers)
		if tc.refused == "" {
			if err != nil {
				t.Errorf("%s on %v: %v", tc.typ, tc.servers, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%s on %v: %v, want %q", tc.typ, tc.servers, err, tc.refused)
		}
		if tc.typ != 0x7005 && problem.KindOf(err) != problem.Unavailable {
			t.Errorf("%s: kind %v, want unavailable", tc.typ, problem.KindOf(err))
		}
	}
	if ProtocolVersion < IgnorableProtocol {
		t.Fatal("this version must understand the ignorable bit")
	}
	for typ, ct := range commandTypes {
		if ct.since > ProtocolVersion && typ != newType && typ != newIgnored {
			t.Errorf("type %s is of protocol %d, newer than this version's %d", typ, ct.since, ProtocolVersion)
		}
	}
}
