// Package source reads catalog sources: the builtin catalog, git
// repositories (https:// or file://) and directories on the coordinator
// (dir:///path), in Proximity's format or, through importers, in a
// store's format. Reading is bounded: every fetch has a deadline, files
// larger than MaxFileBytes are skipped, and a source whose files exceed
// MaxTreeBytes or whose transfer exceeds MaxFetchBytes fails.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing/fstest"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/casaos"
	"github.com/proximity-ve/proximity/internal/catalog/runtipi"
	"github.com/proximity-ve/proximity/internal/problem"
)

// The source formats.
const (
	FormatProximity = "proximity"
	FormatCasaOS    = "casaos"
	FormatRuntipi   = "runtipi"
)

// Builtin is the name of the shipped catalog's source.
const Builtin = "builtin"

// Bounds of a source.
const (
	// MaxEntries is the most entries one source keeps; the rest are
	// rejected with a reason.
	MaxEntries = 2000
	// MaxSourceBytes bounds the JSON of one source's entries (they are
	// one Raft entry); the entries past it, in id order, are rejected.
	MaxSourceBytes = 8 << 20
	// MaxProblems is the most problems one source's report keeps.
	MaxProblems = 4000
	// MaxFileBytes: a larger file of a source is not read.
	MaxFileBytes = 1 << 20
	// MaxTreeBytes bounds the files read from one source.
	MaxTreeBytes = 64 << 20
	// MaxFiles bounds the number of files read from one source.
	MaxFiles = 50000
	// MaxFetchBytes bounds each HTTP answer of a git fetch.
	MaxFetchBytes = 256 << 20
	// Timeout is a fetch's deadline.
	Timeout = 45 * time.Second
)

// Spec is a source as an admin adds it.
type Spec struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Ref    string `json:"ref,omitempty"`
	Path   string `json:"path,omitempty"`
	Format string `json:"format"`
}

// Importer reads a store's files: an fs.FS and the directory of the store
// in it.
type Importer func(fsys fs.FS, dir string) catalog.ImportResult

// importers are the formats that can be read today.
var importers = map[string]Importer{
	FormatProximity: catalog.Import,
	FormatCasaOS:    casaos.Import,
	FormatRuntipi:   runtipi.Import,
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	refRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// reserved names would be hidden by the routes under /api/v1/catalog/.
	reserved = map[string]bool{Builtin: true, "sources": true, "icons": true, "categories": true, "reload": true}
)

// Available says whether this version reads the format: 400 "not
// available yet" when it does not.
func Available(format string) error {
	if importers[format] == nil {
		return problem.E(problem.Invalid, "format: %s is not available yet", format)
	}
	return nil
}

// ValidName says whether name can name a source (builtin included).
func ValidName(name string) bool {
	return name == Builtin || (nameRE.MatchString(name) && !reserved[name])
}

// Validate checks and normalizes a spec (the path "" becomes "."). Errors
// are problem.Invalid naming the field.
func (s *Spec) Validate() error {
	if !nameRE.MatchString(s.Name) {
		return problem.E(problem.Invalid, "name: %q must be 1-32 lower-case letters, digits and dashes", s.Name)
	}
	if reserved[s.Name] {
		return problem.E(problem.Invalid, "name: %q is reserved", s.Name)
	}
	switch s.Format {
	case FormatProximity, FormatCasaOS, FormatRuntipi:
	default:
		return problem.E(problem.Invalid, "format: %q must be proximity, casaos or runtipi", s.Format)
	}
	if err := checkURL(s.URL); err != nil {
		return err
	}
	if s.Ref != "" {
		if strings.HasPrefix(s.URL, "dir:") {
			return problem.E(problem.Invalid, "ref: a directory source has no ref")
		}
		if !refRE.MatchString(s.Ref) || strings.Contains(s.Ref, "..") || strings.HasSuffix(s.Ref, "/") || strings.HasSuffix(s.Ref, ".lock") {
			return problem.E(problem.Invalid, "ref: %q is not a branch, tag or commit name", s.Ref)
		}
	}
	if s.Path == "" || s.Path == "/" {
		s.Path = "."
	}
	s.Path = strings.TrimSuffix(s.Path, "/")
	if !fs.ValidPath(s.Path) || len(s.Path) > 200 {
		return problem.E(problem.Invalid, "path: %q must be a relative path inside the source, without .. (e.g. apps)", s.Path)
	}
	return nil
}

func checkURL(raw string) error {
	if raw == "" || len(raw) > 1024 || strings.ContainsAny(raw, " \t\r\n\\") {
		return problem.E(problem.Invalid, "url: %q must be https://HOST/REPO, file:///PATH (a git repository) or dir:///PATH (a directory)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return problem.E(problem.Invalid, "url: %q is not a URL", raw)
	}
	if u.User != nil {
		return problem.E(problem.Invalid, "url: credentials in the URL are not accepted (they would be stored in the replicated state); use a public repository")
	}
	switch u.Scheme {
	case "https":
		if u.Hostname() == "" || u.Fragment != "" {
			return problem.E(problem.Invalid, "url: %q must be https://HOST/REPO", raw)
		}
	case "file", "dir":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || path.Clean(u.Path) != u.Path || u.RawQuery != "" || u.Fragment != "" {
			return problem.E(problem.Invalid, "url: %q must be %s:///ABSOLUTE/PATH (a clean absolute path)", raw, u.Scheme)
		}
	default:
		return problem.E(problem.Invalid, "url: %q must be https:// (remote git), file:// (local git) or dir:// (a directory); other schemes are not accepted", raw)
	}
	return nil
}

// Result is what one fetch of a source gave.
type Result struct {
	// Entries are the kept entries: ids are "source/id" (bare for the
	// builtin source) and Source is set.
	Entries []catalog.Entry
	// Problems are the rejected and degraded entries, with reasons.
	Problems []catalog.Problem
	// Commit is the git commit read ("" for a directory).
	Commit string
}

// Fetch reads a source within ctx (and at most Timeout).
func Fetch(ctx context.Context, s Spec) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	imp := importers[s.Format]
	if imp == nil {
		return Result{}, fmt.Errorf("format %s is not available", s.Format)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return Result{}, err
	}
	var fsys fs.FS
	var commit string
	switch u.Scheme {
	case "dir":
		fsys, err = readDir(ctx, u.Path, s.Path)
	case "file", "https":
		fsys, commit, err = readGit(ctx, u, s)
	default:
		err = fmt.Errorf("scheme %s is not supported", u.Scheme)
	}
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("fetch: %w", err)
	}
	r := finish(s.Name, imp(fsys, s.Path))
	r.Commit = commit
	return r, nil
}

// FetchBuiltin reads the builtin source: the starter catalog built into
// the binary, or the *.yaml files of dir. It returns where it read from
// ("starter" or dir).
func FetchBuiltin(ctx context.Context, dir string) (Result, string, error) {
	if dir == "" {
		return finish(Builtin, catalog.Import(catalog.StarterFS(), "starter")), "starter", nil
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	fsys, err := readDir(ctx, dir, ".")
	if err != nil {
		return Result{}, dir, err
	}
	return finish(Builtin, catalog.Import(fsys, ".")), dir, nil
}

// finish checks an importer's result and names its entries after the
// source: ids become "name/id" (bare for builtin), Source is set, file
// icons resolve to the icons the coordinator serves (builtin only).
func finish(name string, in catalog.ImportResult) Result {
	out := Result{Entries: []catalog.Entry{}, Problems: append([]catalog.Problem{}, in.Problems...)}
	seen := map[string]bool{}
	for _, e := range in.Entries {
		file := e.File
		if file == "" {
			file = e.ID
		}
		if err := e.Validate(file); err != nil {
			// An importer's entry must pass the same rules as a file.
			out.Problems = append(out.Problems, catalog.Problems(e.ID, file, err)...)
			continue
		}
		if seen[e.ID] {
			out.Problems = append(out.Problems, catalog.Problem{ID: e.ID, File: file, Field: "id", Reason: "the id is used twice in the source", Rejected: true})
			continue
		}
		if len(out.Entries) >= MaxEntries {
			out.Problems = append(out.Problems, catalog.Problem{ID: e.ID, File: file, Field: "(source)", Reason: fmt.Sprintf("the source has more than %d entries", MaxEntries), Rejected: true})
			continue
		}
		seen[e.ID] = true
		if e.Icon != "" && !strings.HasPrefix(e.Icon, "https://") {
			if _, ok := catalog.Icon(e.Icon); name == Builtin && ok {
				e.Icon = catalog.IconPrefix + e.Icon
			} else {
				out.Problems = append(out.Problems, catalog.Problem{ID: e.ID, File: file, Field: "icon", Reason: fmt.Sprintf("%q is not an icon the coordinator serves (only the builtin catalog's icons are); the entry has no icon", e.Icon)})
				e.Icon = ""
			}
		}
		e.Source = name
		if name != Builtin {
			e.ID = name + "/" + e.ID
		}
		out.Entries = append(out.Entries, e)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].ID < out.Entries[j].ID })
	total := 0
	for i, e := range out.Entries {
		b, _ := json.Marshal(e)
		if total += len(b); total > MaxSourceBytes {
			for _, e := range out.Entries[i:] {
				out.Problems = append(out.Problems, catalog.Problem{ID: strings.TrimPrefix(e.ID, name+"/"), File: e.File, Field: "(source)", Reason: fmt.Sprintf("the source's entries exceed %d MiB in all", MaxSourceBytes>>20), Rejected: true})
			}
			out.Entries = out.Entries[:i]
			break
		}
	}
	if len(out.Problems) > MaxProblems {
		n := len(out.Problems) - MaxProblems
		out.Problems = append(out.Problems[:MaxProblems-1], catalog.Problem{Field: "(report)", Reason: fmt.Sprintf("%d more problems are not shown", n+1)})
	}
	return out
}

// textFiles are the kinds of files a store's importer reads; the others
// (pictures above all) are not read, nor counted in the bounds.
var textFiles = map[string]bool{".yaml": true, ".yml": true, ".json": true, ".md": true, ".txt": true, ".toml": true}

// tree collects a source's files within the bounds.
type tree struct {
	fs    fstest.MapFS
	bytes int64
}

func (t *tree) add(ctx context.Context, name string, size int64, read func() ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if size > MaxFileBytes || !textFiles[path.Ext(name)] {
		return nil // a picture or an archive: no importer reads it
	}
	if len(t.fs) >= MaxFiles {
		return fmt.Errorf("the source has more than %d files", MaxFiles)
	}
	if t.bytes+size > MaxTreeBytes {
		return fmt.Errorf("the source's files exceed %d MiB", MaxTreeBytes>>20)
	}
	b, err := read()
	if err != nil {
		return err
	}
	if int64(len(b)) > MaxFileBytes {
		return nil
	}
	t.bytes += int64(len(b))
	t.fs[name] = &fstest.MapFile{Data: b, Mode: 0o444}
	return nil
}

// readDir copies the regular files under sub of the directory root
// (symbolic links are not followed).
func readDir(ctx context.Context, root, sub string) (fs.FS, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", root, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	dfs := os.DirFS(root)
	t := &tree{fs: fstest.MapFS{}}
	err = fs.WalkDir(dfs, sub, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return t.add(ctx, p, info.Size(), func() ([]byte, error) { return readFile(dfs, p) })
	})
	if err != nil {
		return nil, err
	}
	return t.fs, nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

// readGit reads the tree of the source's commit: a local repository
// (file://) is opened where it is, a remote one (https://) is cloned
// into a temporary directory, as shallow as the ref allows.
func readGit(ctx context.Context, u *url.URL, s Spec) (fs.FS, string, error) {
	var repo *git.Repository
	var err error
	if u.Scheme == "file" {
		repo, err = git.PlainOpen(u.Path)
		if err != nil {
			return nil, "", fmt.Errorf("git repository %s: %w", u.Path, err)
		}
	} else {
		tmp, err := os.MkdirTemp("", "proximity-source-")
		if err != nil {
			return nil, "", err
		}
		defer os.RemoveAll(tmp)
		repo, err = clone(ctx, tmp, s)
		if err != nil {
			return nil, "", err
		}
	}
	hash, err := resolve(repo, s.Ref)
	if err != nil {
		return nil, "", err
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return nil, "", fmt.Errorf("commit %s: %w", hash, err)
	}
	root, err := commit.Tree()
	if err != nil {
		return nil, "", err
	}
	if s.Path != "." {
		if root, err = root.Tree(s.Path); err != nil {
			return nil, "", fmt.Errorf("path %s at commit %s: %w", s.Path, hash, err)
		}
	}
	t := &tree{fs: fstest.MapFS{}}
	err = root.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		return t.add(ctx, path.Join(s.Path, f.Name), f.Size, func() ([]byte, error) {
			r, err := f.Reader()
			if err != nil {
				return nil, err
			}
			defer r.Close()
			return io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
		})
	})
	if err != nil {
		return nil, "", err
	}
	return t.fs, hash.String(), nil
}

// resolve finds the commit of ref ("" is HEAD): a branch, a tag or a
// commit hash.
func resolve(repo *git.Repository, ref string) (plumbing.Hash, error) {
	if ref == "" {
		h, err := repo.Head()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("HEAD: %w", err)
		}
		return h.Hash(), nil
	}
	h, err := repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", ref, err)
	}
	return *h, nil
}

// clone fetches a remote repository into dir: the one commit of a branch
// or tag, or the whole history when ref is a commit hash.
func clone(ctx context.Context, dir string, s Spec) (*git.Repository, error) {
	opts := &git.CloneOptions{URL: s.URL, Depth: 1, SingleBranch: true, Tags: git.NoTags, NoCheckout: true}
	switch {
	case hashRE.MatchString(s.Ref):
		opts.Depth, opts.SingleBranch = 0, false
	case s.Ref != "":
		opts.ReferenceName = plumbing.NewBranchReferenceName(s.Ref)
	}
	repo, err := git.PlainCloneContext(ctx, dir, true, opts)
	if err != nil && s.Ref != "" && opts.ReferenceName != "" && errors.Is(err, git.NoMatchingRefSpecError{}) {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		opts.ReferenceName = plumbing.NewTagReferenceName(s.Ref)
		repo, err = git.PlainCloneContext(ctx, dir, true, opts)
		if err != nil {
			return nil, fmt.Errorf("clone %s at %s: %w", s.URL, s.Ref, err)
		}
		return repo, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", s.URL, err)
	}
	return repo, nil
}

func init() { installHTTPS() }

// installHTTPS sets the https transport of every fetch: each answer is
// bounded, and a redirect must stay on https.
func installHTTPS() {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	client.InstallProtocol("https", githttp.NewClient(&http.Client{
		Transport: limitTransport{tr},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= 5 {
				return errors.New("a git source may redirect only to https, at most 5 times")
			}
			return nil
		},
	}))
}

type limitTransport struct{ base http.RoundTripper }

func (l limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxFetchBytes}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the repository is larger than %d MiB", MaxFetchBytes>>20)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
