package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/proximity-ve/proximity/internal/catalog"
)

func TestSpecValidate(t *testing.T) {
	good := []Spec{
		{Name: "mine", URL: "https://git.example.org/me/apps.git", Format: FormatProximity},
		{Name: "casa", URL: "https://github.com/IceWhaleTech/CasaOS-AppStore", Ref: "main", Format: FormatCasaOS},
		{Name: "a1", URL: "file:///srv/repo", Ref: "0123456789abcdef0123456789abcdef01234567", Path: "apps/", Format: FormatRuntipi},
		{Name: "local", URL: "dir:///srv/catalog", Format: FormatProximity},
	}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []struct {
		s     Spec
		field string
	}{
		{Spec{Name: "", URL: "dir:///x", Format: "proximity"}, "name:"},
		{Spec{Name: "UPPER", URL: "dir:///x", Format: "proximity"}, "name:"},
		{Spec{Name: "icons", URL: "dir:///x", Format: "proximity"}, "name:"},
		{Spec{Name: "x", URL: "dir:///x", Format: "umbrel"}, "format:"},
		{Spec{Name: "x", URL: "http://example.org/r", Format: "proximity"}, "url:"},
		{Spec{Name: "x", URL: "ssh://git@example.org/r", Format: "proximity"}, "url:"},
		{Spec{Name: "x", URL: "https://tok@example.org/r", Format: "proximity"}, "credentials"},
		{Spec{Name: "x", URL: "file://host/srv/r", Format: "proximity"}, "url:"},
		{Spec{Name: "x", URL: "dir:///srv/../etc", Format: "proximity"}, "url:"},
		{Spec{Name: "x", URL: "/srv/catalog", Format: "proximity"}, "url:"},
		{Spec{Name: "x", URL: "dir:///x", Ref: "main", Format: "proximity"}, "ref:"},
		{Spec{Name: "x", URL: "file:///x", Ref: "--upload-pack=sh", Format: "proximity"}, "ref:"},
		{Spec{Name: "x", URL: "file:///x", Ref: "a..b", Format: "proximity"}, "ref:"},
		{Spec{Name: "x", URL: "file:///x", Path: "../up", Format: "proximity"}, "path:"},
		{Spec{Name: "x", URL: "file:///x", Path: "/abs", Format: "proximity"}, "path:"},
	}
	for _, c := range bad {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error about %s", c.s, err, c.field)
		}
	}
}

func entry(id string) catalog.Entry {
	b, err := os.ReadFile("../starter/homepage.yaml")
	if err != nil {
		panic(err)
	}
	e, err := catalog.Parse("homepage.yaml", b)
	if err != nil {
		panic(err)
	}
	e.ID, e.File = id, id+".yaml"
	return e
}

// TestFinishNamesAndBoundsEntries: a source's entries are named
// source/id, an icon file of a source other than builtin is dropped with
// a reason, an importer's invalid entry is rejected, and entries past
// MaxEntries are rejected with the reason.
func TestFinishNamesAndBoundsEntries(t *testing.T) {
	in := catalog.ImportResult{}
	for i := 0; i <= MaxEntries; i++ {
		in.Entries = append(in.Entries, entry(fmt.Sprintf("app-%04d", i)))
	}
	bad := entry("bad")
	bad.HealthCheck.Path = "alive"
	in.Entries = append(in.Entries, bad)
	r := finish("mine", in)
	if len(r.Entries) != MaxEntries {
		t.Fatalf("%d entries kept", len(r.Entries))
	}
	e := r.Entries[0]
	if e.ID != "mine/app-0000" || e.Source != "mine" || e.Icon != "" {
		t.Fatalf("the first entry: %s %s %q", e.ID, e.Source, e.Icon)
	}
	var rejected, degraded []catalog.Problem
	for _, p := range r.Problems {
		if p.Rejected {
			rejected = append(rejected, p)
		} else {
			degraded = append(degraded, p)
		}
	}
	if len(degraded) != MaxEntries || degraded[0].Field != "icon" {
		t.Fatalf("%d degraded: %+v", len(degraded), degraded[:1])
	}
	if len(rejected) != 2 || rejected[1].ID != "bad" || rejected[1].Field != "health_check.path" || rejected[1].File != "bad.yaml" ||
		rejected[0].ID != fmt.Sprintf("app-%04d", MaxEntries) || !strings.Contains(rejected[0].Reason, "more than") {
		t.Fatalf("rejected: %+v", rejected)
	}
	// The builtin source keeps bare ids and serves its icon files.
	b := finish(Builtin, catalog.ImportResult{Entries: []catalog.Entry{entry("homepage")}})
	if b.Entries[0].ID != "homepage" || b.Entries[0].Icon != catalog.IconPrefix+"homepage.svg" || len(b.Problems) != 0 {
		t.Fatalf("builtin: %+v %+v", b.Entries[0].Icon, b.Problems)
	}
}

// TestDirSourceReadsOnlyItsOwnFiles: a directory source does not follow a
// symbolic link out of it, and skips a file larger than MaxFileBytes.
func TestDirSourceReadsOnlyItsOwnFiles(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	homepage, _ := os.ReadFile("../starter/homepage.yaml")
	os.WriteFile(filepath.Join(dir, "homepage.yaml"), homepage, 0o644)
	os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte(strings.Replace(string(homepage), "id: homepage", "id: secret", 1)), 0o644)
	if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(dir, "secret.yaml")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "huge.yaml"), make([]byte, MaxFileBytes+1), 0o644)
	// Pictures are not read: even many of them do not exceed the bound.
	for i := 0; i < MaxTreeBytes/MaxFileBytes+1; i++ {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("shot-%d.png", i)), make([]byte, MaxFileBytes), 0o644)
	}
	r, err := Fetch(context.Background(), Spec{Name: "d", URL: "dir://" + dir, Path: ".", Format: FormatProximity})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 1 || r.Entries[0].ID != "d/homepage" {
		t.Fatalf("entries: %+v", r.Entries)
	}
	if _, err := Fetch(context.Background(), Spec{Name: "d", URL: "dir://" + dir + "/nosuch", Path: ".", Format: FormatProximity}); err == nil {
		t.Fatal("a missing directory fetched")
	}
}

// TestGitSourceRefs: a file:// source reads the commit of a branch, a
// tag, a commit hash or HEAD; an unknown ref is an error.
func TestGitSourceRefs(t *testing.T) {
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	homepage, _ := os.ReadFile("../starter/homepage.yaml")
	commit := func(version string) plumbing.Hash {
		os.MkdirAll(filepath.Join(dir, "apps"), 0o755)
		os.WriteFile(filepath.Join(dir, "apps", "homepage.yaml"), []byte(strings.Replace(string(homepage), `version: "`, `version: "`+version+`-`, 1)), 0o644)
		wt.Add("apps/homepage.yaml")
		h, err := wt.Commit(version, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := commit("v1")
	if _, err := repo.CreateTag("v1", first, nil); err != nil {
		t.Fatal(err)
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("stable"), first)); err != nil {
		t.Fatal(err)
	}
	second := commit("v2")
	for ref, want := range map[string]plumbing.Hash{"": second, "stable": first, "v1": first, first.String(): first, second.String(): second} {
		r, err := Fetch(context.Background(), Spec{Name: "g", URL: "file://" + dir, Ref: ref, Path: "apps", Format: FormatProximity})
		if err != nil || r.Commit != want.String() || len(r.Entries) != 1 {
			t.Fatalf("ref %q: %v %s %d", ref, err, r.Commit, len(r.Entries))
		}
		if v := r.Entries[0].Version; (want == first) != strings.HasPrefix(v, "v1-") {
			t.Fatalf("ref %q: version %s", ref, v)
		}
	}
	if _, err := Fetch(context.Background(), Spec{Name: "g", URL: "file://" + dir, Ref: "nosuch", Format: FormatProximity}); err == nil {
		t.Fatal("an unknown ref fetched")
	}
	if _, err := Fetch(context.Background(), Spec{Name: "g", URL: "file://" + dir, Path: "nosuch", Format: FormatProximity}); err == nil {
		t.Fatal("a missing path fetched")
	}
}

// TestFetchAnswerBounded: an HTTP answer of a git fetch larger than the
// bound fails instead of filling the disk.
func TestFetchAnswerBounded(t *testing.T) {
	b := &limitedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), left: 10}
	got, err := io.ReadAll(b)
	if err == nil || len(got) != 10 || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}
