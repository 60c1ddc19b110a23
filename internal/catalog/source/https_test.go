package source

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// TestGitSourceOverHTTPS: a remote repository (git's smart HTTP protocol,
// served by `git http-backend` over TLS on loopback) is cloned at HEAD, a
// branch, a tag or a commit hash into a temporary directory that is gone
// afterwards.
func TestGitSourceOverHTTPS(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git binary to serve the repository")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	homepage, _ := os.ReadFile("../starter/homepage.yaml")
	commit := func(version string) plumbing.Hash {
		os.WriteFile(filepath.Join(dir, "homepage.yaml"), []byte(strings.Replace(string(homepage), `version: "`, `version: "`+version+`-`, 1)), 0o644)
		wt.Add("homepage.yaml")
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
	repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("stable"), first))
	second := commit("v2")

	srv := httptest.NewTLSServer(&cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	defer srv.Close()
	// Trust the test server; the answers stay bounded.
	client.InstallProtocol("https", githttp.NewClient(&http.Client{Transport: limitTransport{srv.Client().Transport}}))
	defer installHTTPS()

	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "proximity-source-*"))
	for ref, want := range map[string]plumbing.Hash{"": second, "stable": first, "v1": first, first.String(): first} {
		r, err := Fetch(context.Background(), Spec{Name: "r", URL: srv.URL + "/store/.git", Ref: ref, Path: ".", Format: FormatProximity})
		if err != nil || r.Commit != want.String() || len(r.Entries) != 1 {
			t.Fatalf("ref %q: %v %s %d", ref, err, r.Commit, len(r.Entries))
		}
	}
	if _, err := Fetch(context.Background(), Spec{Name: "r", URL: srv.URL + "/store/.git", Ref: "nosuch", Path: ".", Format: FormatProximity}); err == nil {
		t.Fatal("an unknown ref fetched")
	}
	if tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "proximity-source-*")); len(tmpAfter) != len(tmpBefore) {
		t.Fatalf("temporary clones left behind: %v", tmpAfter)
	}
}
