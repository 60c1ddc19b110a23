package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/proximity-ve/proximity/internal/catalog"
)

// gitCommit writes files into the repository at dir (made if needed) and
// commits them; it returns the commit's hash.
func gitCommit(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		if repo, err = git.PlainInit(dir, false); err != nil {
			t.Fatal(err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	h, err := wt.Commit("catalog", &git.CommitOptions{Author: &object.Signature{Name: "test", Email: "test@example.org", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// starterEntry reads an entry of the starter catalog, with replacements.
func starterEntry(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile("../../internal/catalog/starter/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(repl...).Replace(string(b))
}

type sourceOut struct {
	Name, URL, Format, Commit, Error string
	Entries, Rejected, Degraded      int
	Problems                         []struct {
		ID, File, Field, Reason string
		Rejected                bool
	}
}

type entryOut struct {
	ID, Name, Version, Source, Icon, Tagline, Category string
}

// TestCatalogGitSourceFollowsItsRepository: a git repository made in the
// test, added as a source with a file:// URL, serves its entries as
// source/id; a bad entry is rejected alone with its file, field and
// reason; an app deploys from source/id; a new commit is seen on reload
// (its commit, the entry's version, the app's update_available); a
// repository that cannot be read keeps the entries and reports the
// error; the source can be removed, builtin not.
func TestCatalogGitSourceFollowsItsRepository(t *testing.T) {
	tc, _, tok := appCluster(t)
	repo := filepath.Join(t.TempDir(), "store")
	first := gitCommit(t, repo, map[string]string{
		"apps/vaultwarden.yaml": starterEntry(t, "vaultwarden"),
		"apps/broken.yaml":      starterEntry(t, "vaultwarden", "id: vaultwarden", "id: broken", "memory_mb: 512", "memory_mb: 1"),
		"README.md":             "not an entry\n",
	})
	spec := map[string]any{"name": "mine", "url": "file://" + repo, "path": "apps", "format": "proximity"}
	if code, _ := tc.call(0, "POST", "/api/v1/catalog/sources", tok["alice"], spec, nil, nil); code != http.StatusForbidden {
		t.Fatalf("a user adds a source: %d", code)
	}
	var src sourceOut
	if code, err := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, spec, nil, &src); err != nil || code != http.StatusCreated {
		t.Fatalf("add: %d %v", code, err)
	}
	// The icon file of a source other than builtin is dropped, with a reason.
	if src.Entries != 1 || src.Rejected != 1 || src.Degraded != 1 || src.Commit != first || src.Error != "" || len(src.Problems) != 2 ||
		src.Problems[1].File != "apps/vaultwarden.yaml" || src.Problems[1].Field != "icon" || src.Problems[1].Rejected {
		t.Fatalf("the source's report: %+v", src)
	}
	if p := src.Problems[0]; p.File != "apps/broken.yaml" || p.Field != "resources.memory_mb" || !strings.Contains(p.Reason, "outside") || !p.Rejected || p.ID != "broken" {
		t.Fatalf("the rejection: %+v", p)
	}
	var e entryOut
	if code, err := tc.call(0, "GET", "/api/v1/catalog/mine/vaultwarden", tok["alice"], nil, nil, &e); err != nil || code != 200 ||
		e.ID != "mine/vaultwarden" || e.Source != "mine" || e.Version != "1.32.7" {
		t.Fatalf("the imported entry: %d %v %+v", code, err, e)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/catalog/mine/broken", tok["alice"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("the rejected entry: %d", code)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, spec, nil, nil); code != http.StatusConflict {
		t.Fatalf("the same name again: %d", code)
	}

	// An app deploys from source/id.
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "mine/vaultwarden", "hostname": "vault"}, nil, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("deploy mine/vaultwarden: %d %v", code, err)
	}
	var app struct {
		CatalogID       string  `json:"catalog_id"`
		CatalogVersion  string  `json:"catalog_version"`
		UpdateAvailable *string `json:"update_available"`
	}
	tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &app)
	if app.CatalogID != "mine/vaultwarden" || app.CatalogVersion != "1.32.7" || app.UpdateAvailable != nil {
		t.Fatalf("the app's catalog entry: %+v", app)
	}

	// A new commit: a reload reads it, and the app sees the update.
	second := gitCommit(t, repo, map[string]string{"apps/vaultwarden.yaml": starterEntry(t, "vaultwarden", `version: "1.32.7"`, `version: "1.33.0"`)})
	var rl struct {
		Sources []struct{ Name, Commit, Error string }
	}
	if code, err := tc.call(0, "POST", "/api/v1/catalog/reload", tc.token, nil, nil, &rl); err != nil || code != 200 || len(rl.Sources) != 2 || rl.Sources[1].Commit != second {
		t.Fatalf("reload: %d %v %+v", code, err, rl)
	}
	tc.call(0, "GET", "/api/v1/catalog/mine/vaultwarden", tok["alice"], nil, nil, &e)
	if e.Version != "1.33.0" {
		t.Fatalf("the entry after the new commit: %+v", e)
	}
	tc.call(0, "GET", "/api/v1/apps/"+a.ID, tok["alice"], nil, nil, &app)
	if app.UpdateAvailable == nil || *app.UpdateAvailable != "1.33.0" {
		t.Fatalf("the app after the new commit: %+v", app)
	}

	// The repository goes away: the entries stay, the report says why.
	if err := os.Rename(repo, repo+".gone"); err != nil {
		t.Fatal(err)
	}
	if code, err := tc.call(0, "POST", "/api/v1/catalog/reload", tc.token, nil, nil, &rl); err != nil || code != 200 || rl.Sources[1].Error == "" {
		t.Fatalf("reload without the repository: %d %v %+v", code, err, rl)
	}
	if code, err := tc.call(0, "GET", "/api/v1/catalog/sources/mine", tc.token, nil, nil, &src); err != nil || code != 200 ||
		src.Error == "" || src.Entries != 1 || src.Commit != second {
		t.Fatalf("the report after a failed fetch: %d %v %+v", code, err, src)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/catalog/mine/vaultwarden", tok["alice"], nil, nil, &e); code != 200 || e.Version != "1.33.0" {
		t.Fatalf("the entry after a failed fetch: %d %+v", code, e)
	}

	// Removing: the source and its entries go; builtin stays.
	if code, _ := tc.call(0, "DELETE", "/api/v1/catalog/sources/builtin", tc.token, nil, nil, nil); code != http.StatusBadRequest {
		t.Fatalf("remove builtin: %d", code)
	}
	if code, _ := tc.call(0, "DELETE", "/api/v1/catalog/sources/mine", tc.token, nil, nil, nil); code != http.StatusNoContent {
		t.Fatalf("remove: %d", code)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/catalog/mine/vaultwarden", tok["alice"], nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("an entry of a removed source: %d", code)
	}
	if code, _ := tc.call(0, "GET", "/api/v1/catalog/sources/mine", tc.token, nil, nil, nil); code != http.StatusNotFound {
		t.Fatalf("a removed source: %d", code)
	}
}

// TestCatalogSourceBadSpecRefused: a source that cannot be one is 400
// naming the field, and adds nothing; a format without its importer is
// "not available yet".
func TestCatalogSourceBadSpecRefused(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	for _, c := range []struct {
		spec  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "url": "http://example.org/store.git", "format": "proximity"}, "url"},
		{map[string]any{"name": "x", "url": "https://user:secret@example.org/store.git", "format": "proximity"}, "url"},
		{map[string]any{"name": "x", "url": "file://relative/path", "format": "proximity"}, "url"},
		{map[string]any{"name": "x", "url": "/srv/catalog", "format": "proximity"}, "url"},
		{map[string]any{"name": "Bad Name", "url": "dir:///srv", "format": "proximity"}, "name"},
		{map[string]any{"name": "builtin", "url": "dir:///srv", "format": "proximity"}, "name"},
		{map[string]any{"name": "sources", "url": "dir:///srv", "format": "proximity"}, "name"},
		{map[string]any{"name": "x", "url": "dir:///srv", "format": "umbrel"}, "format"},
		{map[string]any{"name": "x", "url": "dir:///srv", "path": "../etc", "format": "proximity"}, "path"},
		{map[string]any{"name": "x", "url": "dir:///srv", "ref": "main", "format": "proximity"}, "ref"},
		{map[string]any{"name": "x", "url": "file:///srv/repo", "ref": "-upload-pack=x", "format": "proximity"}, "ref"},
		{map[string]any{"name": "x", "url": "dir:///srv", "format": "proximity", "colour": "red"}, "colour"},
	} {
		st, _, body := tc.raw(0, "POST", "/api/v1/catalog/sources", tc.token, mustJSON(c.spec), nil)
		if st != http.StatusBadRequest && !(c.field == "name" && st == http.StatusConflict) || !strings.Contains(string(body), c.field) {
			t.Errorf("%v: %d %s", c.spec, st, body)
		}
	}
	var list struct{ Items []sourceOut }
	if code, err := tc.call(0, "GET", "/api/v1/catalog/sources", tc.token, nil, nil, &list); err != nil || code != 200 || len(list.Items) != 1 || list.Items[0].Name != "builtin" {
		t.Fatalf("sources after bad specs: %d %v %+v", code, err, list)
	}
}

// TestCatalogDirectorySource: a dir:// source reads a directory on the
// coordinators; an icon file of another source is dropped with a reason;
// every server serves its entries.
func TestCatalogDirectorySource(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.waitLeader()
	tc.waitToken()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gitea.yaml"), []byte(starterEntry(t, "gitea")), 0o644)
	var src sourceOut
	body := map[string]any{"name": "local", "url": "dir://" + dir, "format": "proximity"}
	key := map[string]string{"Idempotency-Key": "add-local-1"}
	if code, err := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, body, key, &src); err != nil || code != 201 {
		t.Fatalf("add: %d %v", code, err)
	}
	// A retry with the same key gets the answer again; another request is 409.
	if code, err := tc.call(1, "POST", "/api/v1/catalog/sources", tc.token, body, key, nil); err != nil || code != 201 {
		t.Fatalf("the add retried: %d %v", code, err)
	}
	if code, _ := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, body, nil, nil); code != http.StatusConflict {
		t.Fatalf("the add again: %d", code)
	}
	if src.Entries != 1 || src.Degraded != 1 || src.Commit != "" || len(src.Problems) != 1 || src.Problems[0].Field != "icon" || src.Problems[0].Rejected {
		t.Fatalf("the report: %+v", src)
	}
	for i := range tc.nodes {
		var e entryOut
		waitFor(t, "the entry on every server", 10*time.Second, func() bool {
			code, _ := tc.call(i, "GET", "/api/v1/catalog/local/gitea", tc.token, nil, nil, &e)
			return code == 200
		})
		if e.Icon != catalog.IconPrefix+"monogram-g.svg" || e.Source != "local" || e.ID != "local/gitea" {
			t.Fatalf("the entry on server %d: %+v", i, e)
		}
	}
}

// TestCatalogStoreSources: a CasaOS store and a Runtipi appstore in
// directories import as sources: the apps that fit are entries
// <source>/<id>, the others are in the report with their reasons.
func TestCatalogStoreSources(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	for _, format := range []string{"casaos", "runtipi"} {
		storeSource(t, tc, format)
	}
}

func storeSource(t *testing.T, tc *testCluster, format string) {
	store, err := filepath.Abs("../../internal/catalog/" + format + "/testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	var src sourceOut
	name := format[:4]
	if code, err := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, map[string]any{"name": name, "url": "dir://" + store, "format": format}, nil, &src); err != nil || code != 201 {
		t.Fatalf("add %s: %d %v", format, code, err)
	}
	if src.Entries == 0 || src.Rejected == 0 || src.Error != "" {
		t.Fatalf("the report of %s: %+v", format, src)
	}
	for _, p := range src.Problems {
		if p.File == "" || p.Field == "" || p.Reason == "" {
			t.Errorf("a problem without its file, field or reason: %+v", p)
		}
	}
	var list struct {
		Items []entryOut
		Total int
	}
	if code, err := tc.call(0, "GET", "/api/v1/catalog?source="+name+"&per_page=100", tc.token, nil, nil, &list); err != nil || code != 200 || list.Total != src.Entries {
		t.Fatalf("the source's entries: %d %v %d of %d", code, err, list.Total, src.Entries)
	}
	for _, e := range list.Items {
		if !strings.HasPrefix(e.ID, name+"/") || e.Source != name {
			t.Errorf("entry %+v", e)
		}
		// Every entry has an icon URL: its store's (https://), or one the
		// API serves (a store's logo file is not served: a monogram).
		if strings.HasPrefix(e.Icon, "https://") {
			continue
		}
		if code, hdr, body := tc.raw(0, "GET", e.Icon, "", "", nil); code != 200 || hdr.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(string(body), "<svg") {
			t.Errorf("entry %s: icon %q answers %d %s", e.ID, e.Icon, code, hdr.Get("Content-Type"))
		}
	}
}

// TestCatalogSearchCategoriesAndIcons: q, category and source filter the
// list; categories count entries; every builtin entry has a tagline and
// an icon the API serves as SVG with immutable caching.
func TestCatalogSearchCategoriesAndIcons(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.waitLeader()
	waitFor(t, "the catalog", 10*time.Second, func() bool {
		code, _ := tc.call(0, "GET", "/api/v1/catalog/vaultwarden", tc.token, nil, nil, nil)
		return code == 200
	})
	type list struct {
		Items []entryOut
		Total int
	}
	var all list
	tc.call(0, "GET", "/api/v1/catalog?per_page=100", tc.token, nil, nil, &all)
	if all.Total < 27 {
		t.Fatalf("the catalog: %d entries", all.Total)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"q=PASSWORD", []string{"vaultwarden"}},            // the description, any case
		{"q=VSCode", []string{"code-server"}},              // a tag only
		{"q=jelly", []string{"jellyfin"}},                  // the id
		{"q=uptime%20monitoring", []string{"uptime-kuma"}}, // the tagline
		{"q=nothing-matches-this", nil},
		{"category=SECURITY", []string{"vaultwarden"}},
		{"category=security&q=git", nil},
		{"source=nosuch", nil},
	} {
		var got list
		if code, err := tc.call(0, "GET", "/api/v1/catalog?"+c.query, tc.token, nil, nil, &got); err != nil || code != 200 {
			t.Fatalf("%s: %d %v", c.query, code, err)
		}
		var ids []string
		for _, e := range got.Items {
			ids = append(ids, e.ID)
		}
		if strings.Join(ids, ",") != strings.Join(c.want, ",") || got.Total != len(c.want) {
			t.Errorf("%s: %v (total %d), want %v", c.query, ids, got.Total, c.want)
		}
	}
	var builtin list
	tc.call(0, "GET", "/api/v1/catalog?source=builtin&per_page=100", tc.token, nil, nil, &builtin)
	if builtin.Total != all.Total {
		t.Fatalf("source=builtin: %d of %d", builtin.Total, all.Total)
	}
	if st, _, body := tc.raw(0, "GET", "/api/v1/catalog?q="+strings.Repeat("x", 201), tc.token, "", nil); st != 400 || !strings.Contains(string(body), "q:") {
		t.Fatalf("a long q: %d %s", st, body)
	}

	var cats struct {
		Items []struct {
			Name  string
			Count int
		}
	}
	if code, err := tc.call(0, "GET", "/api/v1/catalog/categories", tc.token, nil, nil, &cats); err != nil || code != 200 {
		t.Fatalf("categories: %d %v", code, err)
	}
	sum := 0
	for _, c := range cats.Items {
		var in list
		tc.call(0, "GET", "/api/v1/catalog?category="+c.Name, tc.token, nil, nil, &in)
		if in.Total != c.Count || c.Count == 0 {
			t.Errorf("category %s: %d entries, the list has %d", c.Name, c.Count, in.Total)
		}
		sum += c.Count
	}
	if sum != all.Total {
		t.Fatalf("categories count %d of %d entries", sum, all.Total)
	}

	client := tc.verifiedClient()
	for _, e := range all.Items {
		if e.Source != "builtin" || e.Tagline == "" || !strings.HasPrefix(e.Icon, "/api/v1/catalog/icons/") {
			t.Errorf("entry %s: %+v", e.ID, e)
			continue
		}
		resp, err := client.Get(tc.nodes[0].url() + e.Icon) // public: no token
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(string(body), "<svg") {
			t.Errorf("icon %s: %d %v %.40s", e.Icon, resp.StatusCode, resp.Header, body)
		}
	}
	for _, bad := range []string{"nosuch.svg", "..%2fcatalog.go", "vaultwarden.yaml"} {
		if st, _, _ := tc.raw(0, "GET", "/api/v1/catalog/icons/"+bad, "", "", nil); st != http.StatusNotFound {
			t.Errorf("icon %s: %d", bad, st)
		}
	}
}

// TestCatalogRefreshSeesANewCommit: with --catalog-refresh the leader
// fetches every source by itself, so a new commit is seen without a
// reload.
func TestCatalogRefreshSeesANewCommit(t *testing.T) {
	tc := newTestClusterWith(t, 1, withServers(func(cfg *Config) { cfg.CatalogRefresh = 200 * time.Millisecond }))
	repo := filepath.Join(t.TempDir(), "store")
	gitCommit(t, repo, map[string]string{"gitea.yaml": starterEntry(t, "gitea")})
	if code, err := tc.call(0, "POST", "/api/v1/catalog/sources", tc.token, map[string]any{"name": "mine", "url": "file://" + repo, "format": "proximity"}, nil, nil); err != nil || code != 201 {
		t.Fatalf("add: %d %v", code, err)
	}
	second := gitCommit(t, repo, map[string]string{"gitea.yaml": starterEntry(t, "gitea", `version: "1.22.6"`, `version: "1.23.0"`)})
	waitFor(t, "the new commit", 15*time.Second, func() bool {
		var e entryOut
		var src sourceOut
		tc.call(0, "GET", "/api/v1/catalog/mine/gitea", tc.token, nil, nil, &e)
		tc.call(0, "GET", "/api/v1/catalog/sources/mine", tc.token, nil, nil, &src)
		return e.Version == "1.23.0" && src.Commit == second
	})
}
