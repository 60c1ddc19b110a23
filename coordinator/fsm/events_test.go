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
	f.changes.max = 3
	for i := uint64(1); i <= 4; i++ {
		f.changes.add(i, []Change{{Kind: ChangeApp, Key: "a"}})
	}
	if _, _, ok := f.ChangesAfter(ChangeID{Index: 0}, 10); ok {
		t.Fatal("change 1-0 was evicted; resuming before it must ask for a reset")
	}
	if got, _, ok := f.ChangesAfter(ChangeID{Index: 1}, 10); !ok || len(got) != 3 {
		t.Fatalf("every change after 1-0 is known: %v %v", got, ok)
	}
	got, last, ok := f.ChangesAfter(ChangeID{Index: 2}, 10)
	if !ok || len(got) != 2 || got[0].ID != (ChangeID{3, 0}) || last != (ChangeID{4, 0}) {
		t.Fatalf("after 2-0: %v %v %v", got, last, ok)
	}
	f.st.Index = 4
	snap, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := g.ChangesAfter(ChangeID{Index: 3}, 10); ok {
		t.Fatal("a restored FSM knows no change before its snapshot")
	}
	if _, _, ok := g.ChangesAfter(g.LastChange(), 10); !ok {
		t.Fatal("the position a restored FSM gives must be resumable")
	}
}
