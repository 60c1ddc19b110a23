package fsm

import (
	"flag"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var (
	updatePayloads    = flag.Bool("update-payloads", false, "rewrite testdata/command-fields.txt")
	updateStateFields = flag.Bool("update-state-fields", false, "rewrite testdata/state-fields.txt")
)

// TestCommandPayloadFields keeps the list of every JSON field a command
// can carry (testdata/command-fields.txt). A server decodes a command
// with encoding/json, which drops fields it does not know: a field added
// to an existing payload is silently lost on a server of an older
// version in a rolling upgrade, and the replicas diverge. When this test
// fails, either the new field is one whose absence changes nothing an
// older server applies (then run go test ./coordinator/fsm -run
// TestCommandPayloadFields -update-payloads and say why in the commit),
// or it needs a new command type with its protocol version
// (protocol.go).
func TestCommandPayloadFields(t *testing.T) {
	checkFields(t, reflect.TypeOf(Command{}), "testdata/command-fields.txt", *updatePayloads,
		"the fields a command can carry changed (see this test's comment: an older server drops a field it does not know)")
}

// TestSnapshotStateFields keeps the list of every JSON field of the state,
// which is what a snapshot holds (testdata/state-fields.txt). A server
// restores a snapshot with encoding/json, which drops fields it does not
// know: in a rolling upgrade a server of an older version that restores a
// newer server's snapshot (it is sent one when it is behind, or starts from
// one) silently loses a field added to the state, and the replicas diverge.
// When this test fails, either the new field is one whose absence changes
// nothing an older server applies or answers (then run go test
// ./coordinator/fsm -run TestSnapshotStateFields -update-state-fields and
// say why in the commit), or it must not reach an older server: version
// the snapshot, and refuse to restore a newer one.
func TestSnapshotStateFields(t *testing.T) {
	checkFields(t, reflect.TypeOf(State{}), "testdata/state-fields.txt", *updateStateFields,
		"the fields of the state a snapshot holds changed (see this test's comment: an older server's restore drops a field it does not know)")
}

// checkFields compares the JSON fields of root and of every type of this
// repository it holds with the list in golden, or writes the list when
// update is set.
func checkFields(t *testing.T, root reflect.Type, golden string, update bool, changed string) {
	t.Helper()
	seen := map[reflect.Type]bool{}
	var lines []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() == reflect.Map {
			walk(typ.Key())
			walk(typ.Elem())
			return
		}
		if typ.Kind() != reflect.Struct || seen[typ] || !strings.HasPrefix(typ.PkgPath(), "github.com/proximity-ve/proximity/") {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			pkg := typ.PkgPath()[strings.LastIndex(typ.PkgPath(), "/")+1:]
			lines = append(lines, pkg+"."+typ.Name()+"."+name+" "+f.Type.String())
			walk(f.Type)
		}
	}
	walk(root)
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got == string(want) {
		return
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(want), "\n") {
		have[l] = true
	}
	var added, removed []string
	now := map[string]bool{}
	for _, l := range lines {
		now[l] = true
		if !have[l] {
			added = append(added, l)
		}
	}
	for l := range have {
		if l != "" && !now[l] {
			removed = append(removed, l)
		}
	}
	sort.Strings(removed)
	t.Fatalf("%s\nadded:\n  %s\nremoved:\n  %s", changed, strings.Join(added, "\n  "), strings.Join(removed, "\n  "))
}
