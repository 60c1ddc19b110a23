package fsm

import (
	"bytes"
	"io"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/source"
	"github.com/proximity-ve/proximity/internal/problem"
)

func fetched(name string, spec source.Spec, errText string, ids ...string) Command {
	c := &CatalogFetchedCmd{Name: name, Spec: spec, At: t0, Error: errText, Commit: "c-" + errText}
	for _, id := range ids {
		c.Entries = append(c.Entries, catalog.Entry{ID: id, Name: id, Version: "1", Source: name})
	}
	c.Problems = []catalog.Problem{{ID: "bad", File: "bad.yaml", Field: "id", Reason: "r", Rejected: true}, {ID: ids0(ids), File: "x.yaml", Field: "icon", Reason: "dropped"}}
	return Command{Type: CmdCatalogFetched, RequestID: "f-" + name + errText + ids0(ids), CatalogFetched: c}
}

func ids0(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// TestCatalogSourceKeepsItsEntriesWhenAFetchFails: a failed fetch changes
// only the report's error and time; a good one replaces the entries and
// counts; a fetch of a source removed and added again with another spec
// changes nothing; CatalogEntry finds both id forms; the state survives a
// snapshot.
func TestCatalogSourceKeepsItsEntriesWhenAFetchFails(t *testing.T) {
	f := New(0)
	spec := source.Spec{Name: "mine", URL: "dir:///srv/a", Path: ".", Format: "proximity"}
	mustOK(t, apply(t, f, fetched(source.Builtin, source.Spec{}, "", "web"))[0])
	mustOK(t, apply(t, f, Command{Type: CmdAddCatalogSource, RequestID: "add", AddCatalogSource: &AddCatalogSourceCmd{Spec: spec, At: t0}})[0])
	mustKind(t, apply(t, f, Command{Type: CmdAddCatalogSource, RequestID: "add2", AddCatalogSource: &AddCatalogSourceCmd{Spec: spec, At: t0}})[0], problem.Conflict)
	mustKind(t, apply(t, f, fetched("mine", spec, "", "other/a"))[0], problem.Invalid)
	mustOK(t, apply(t, f, fetched("mine", spec, "", "mine/b", "mine/a"))[0])
	mustOK(t, apply(t, f, fetched("mine", spec, "unreachable"))[0])
	f.Read(func(s *State) {
		src := s.CatalogSources["mine"]
		if len(src.Entries) != 2 || src.Report.Error != "unreachable" || src.Report.Entries != 2 || src.Report.Rejected != 1 || src.Report.Degraded != 1 || src.Report.Commit != "c-" {
			t.Fatalf("after a failed fetch: %+v", src.Report)
		}
		for _, id := range []string{"mine/a", "mine/b"} {
			if e, ok := s.CatalogEntry(id); !ok || e.ID != id {
				t.Fatalf("%s not found", id)
			}
		}
		for _, id := range []string{"web", "builtin/web"} {
			if e, ok := s.CatalogEntry(id); !ok || e.ID != "web" {
				t.Fatalf("%s not found", id)
			}
		}
		for _, id := range []string{"mine/web", "other/a", "a", "mine/"} {
			if _, ok := s.CatalogEntry(id); ok {
				t.Fatalf("%s found", id)
			}
		}
	})

	// Removed and added again elsewhere: the old fetch's result is refused.
	mustOK(t, apply(t, f, Command{Type: CmdRemoveCatalogSource, RequestID: "rm", RemoveCatalogSource: &RemoveCatalogSourceCmd{Name: "mine"}})[0])
	moved := spec
	moved.URL = "dir:///srv/b"
	mustOK(t, apply(t, f, Command{Type: CmdAddCatalogSource, RequestID: "add3", AddCatalogSource: &AddCatalogSourceCmd{Spec: moved, At: t0}})[0])
	mustKind(t, apply(t, f, fetched("mine", spec, "", "mine/old"))[0], problem.Conflict)
	mustKind(t, apply(t, f, Command{Type: CmdRemoveCatalogSource, RequestID: "rmb", RemoveCatalogSource: &RemoveCatalogSourceCmd{Name: source.Builtin}})[0], problem.Invalid)

	// The builtin source with no valid entry keeps its catalog.
	mustOK(t, apply(t, f, fetched(source.Builtin, source.Spec{}, ""))[0])
	f.Read(func(s *State) {
		if len(s.Catalog.Entries) != 1 || s.Catalog.Report.Error == "" {
			t.Fatalf("builtin after an empty fetch: %+v", s.Catalog.Report)
		}
	})

	want, _ := f.Encode()
	snap, _ := f.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Encode(); !bytes.Equal(want, got) {
		t.Fatal("the restored state differs")
	}
}
