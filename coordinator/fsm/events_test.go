package fsm

import (
	"bytes"
	"io"
	"testing"
)

// TestChangesForgottenAskForReset: a position older than the ring (or
// from before a restore) is answered "not ok", so the stream tells its
// client to re-read state instead of skipping changes silently.
func TestChangesForgottenAskForReset(t *testing.T) {
	f := New(0)
	// A ring of 2 keeps up to 4; the fifth change evicts all but the
	// last 2: 1-0, 2-0 and 3-0 go.
	f.changes.max = 2
	for i := uint64(1); i <= 5; i++ {
		f.changes.add(i, []Change{{Kind: ChangeApp, Key: "a"}})
	}
	if _, _, ok := f.ChangesAfter(ChangeID{Index: 2}, 10); ok {
		t.Fatal("change 3-0 was evicted; resuming before it must ask for a reset")
	}
	got, last, ok := f.ChangesAfter(ChangeID{Index: 3}, 10)
	if !ok || len(got) != 2 || got[0].ID != (ChangeID{4, 0}) || last != (ChangeID{5, 0}) {
		t.Fatalf("after 3-0: %v %v %v", got, last, ok)
	}
	if got, _, ok := f.ChangesAfter(ChangeID{Index: 4}, 1); !ok || len(got) != 1 || got[0].ID != (ChangeID{5, 0}) {
		t.Fatalf("after 4-0: %v %v", got, ok)
	}
	f.st.Index = 5
	snap, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := g.ChangesAfter(ChangeID{Index: 4}, 10); ok {
		t.Fatal("a restored FSM knows no change before its snapshot")
	}
	if _, _, ok := g.ChangesAfter(g.LastChange(), 10); !ok {
		t.Fatal("the position a restored FSM gives must be resumable")
	}
}
