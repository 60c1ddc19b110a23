package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/source"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// BuiltinFetch reads the builtin source: the files of dir, or the starter
// catalog when dir is "". A bad file rejects only its own entry.
func BuiltinFetch(ctx context.Context, dir string, at time.Time) *fsm.CatalogFetchedCmd {
	r, from, err := source.FetchBuiltin(ctx, dir)
	c := &fsm.CatalogFetchedCmd{Name: source.Builtin, Spec: source.Spec{Name: source.Builtin, Format: source.FormatProximity}, From: from, At: at.UTC()}
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Entries, c.Problems = r.Entries, r.Problems
	return c
}

// fetchSource reads one added source into the command that records it.
func fetchSource(ctx context.Context, spec source.Spec, at time.Time) *fsm.CatalogFetchedCmd {
	c := &fsm.CatalogFetchedCmd{Name: spec.Name, Spec: spec, At: at.UTC()}
	r, err := source.Fetch(ctx, spec)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Entries, c.Problems, c.Commit = r.Entries, r.Problems, r.Commit
	return c
}

// entryJSON is an entry as the API shows it. Entries recorded before
// sources existed have no source and a file icon: they are builtin's.
func entryJSON(e catalog.Entry) catalog.Entry {
	if e.Source == "" {
		e.Source = source.Builtin
	}
	if e.Icon != "" && !strings.Contains(e.Icon, "/") {
		e.Icon = catalog.IconPrefix + e.Icon
	}
	if e.Icon == "" {
		// Every entry has an icon: a store's own may be a file the
		// coordinator does not serve (reported when it was imported).
		e.Icon = catalog.MonogramIcon(e)
	}
	if e.Tags == nil {
		e.Tags = []string{}
	}
	return e
}

// matches says whether an entry passes the list's filters: q (in the id,
// name, tagline, description or a tag, case-insensitive), category (its
// name, case-insensitive) and source.
func matches(e catalog.Entry, q, category, src string) bool {
	if src != "" && e.Source != src {
		return false
	}
	if category != "" && !strings.EqualFold(e.Category, category) {
		return false
	}
	if q == "" {
		return true
	}
	for _, s := range append([]string{e.ID, e.Name, e.Tagline, e.Description}, e.Tags...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// catalogFilters reads and checks q, category and source.
func catalogFilters(rq *request) (q, category, src string, err error) {
	v := rq.r.URL.Query()
	q, category, src = strings.ToLower(strings.TrimSpace(v.Get("q"))), strings.TrimSpace(v.Get("category")), v.Get("source")
	if len(q) > 200 {
		return "", "", "", problem.E(problem.Invalid, "q: at most 200 characters")
	}
	if len(category) > 100 {
		return "", "", "", problem.E(problem.Invalid, "category: at most 100 characters")
	}
	if src != "" {
		if !source.ValidName(src) {
			return "", "", "", problem.E(problem.Invalid, "source: %q is not a source name", src)
		}
	}
	return q, category, src, nil
}

func (a *API) listCatalog(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	text, category, src, err := catalogFilters(rq)
	if err != nil {
		return 0, nil, err
	}
	out := page[catalog.Entry]{Items: []catalog.Entry{}, Page: pg, PerPage: per}
	var all []catalog.Entry
	a.b.FSM().Read(func(s *fsm.State) {
		s.CatalogEntries(func(e catalog.Entry) bool {
			if e = entryJSON(e); matches(e, text, category, src) {
				all = append(all, e)
			}
			return true
		})
	})
	out.Total = len(all)
	out.Items = append(out.Items, validate.PageOf(all, pg, per)...)
	return http.StatusOK, out, nil
}

// categoryJSON is one category of the catalog and how many entries are in it.
type categoryJSON struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// listCategories counts the entries of each category (names compared
// without case; the first spelling met is shown), optionally of one
// source.
func (a *API) listCategories(rq *request) (int, any, error) {
	_, _, src, err := catalogFilters(rq)
	if err != nil {
		return 0, nil, err
	}
	counts := map[string]*categoryJSON{}
	a.b.FSM().Read(func(s *fsm.State) {
		s.CatalogEntries(func(e catalog.Entry) bool {
			if e = entryJSON(e); matches(e, "", "", src) {
				k := strings.ToLower(e.Category)
				if counts[k] == nil {
					counts[k] = &categoryJSON{Name: e.Category}
				}
				counts[k].Count++
			}
			return true
		})
	})
	items := []categoryJSON{}
	for _, c := range counts {
		items = append(items, *c)
	}
	sort.Slice(items, func(i, j int) bool { return strings.ToLower(items[i].Name) < strings.ToLower(items[j].Name) })
	return http.StatusOK, map[string]any{"items": items}, nil
}

func (a *API) getCatalogEntry(rq *request) (int, any, error) {
	id := rq.r.PathValue("id")
	if s := rq.r.PathValue("source"); s != "" {
		id = s + "/" + id
	}
	var e catalog.Entry
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { e, ok = s.CatalogEntry(id) })
	if !ok {
		return 0, nil, problem.E(problem.NotFound, "catalog entry %s does not exist", id)
	}
	return http.StatusOK, entryJSON(e), nil
}

// rawAnswer is an answer that is not JSON (an icon).
type rawAnswer struct {
	contentType, cacheControl string
	data                      []byte
}

// getIcon serves one of the builtin catalog's icons: an SVG file, with a
// strict content type and a policy that runs nothing in it.
func (a *API) getIcon(rq *request) (int, any, error) {
	b, ok := catalog.Icon(rq.r.PathValue("file"))
	if !ok {
		return 0, nil, problem.E(problem.NotFound, "icon %s does not exist", rq.r.PathValue("file"))
	}
	return http.StatusOK, rawAnswer{contentType: "image/svg+xml", cacheControl: "public, max-age=31536000, immutable", data: b}, nil
}

// sourceJSON is a source and its report.
type sourceJSON struct {
	Name      string     `json:"name"`
	URL       string     `json:"url,omitempty"`
	Ref       string     `json:"ref,omitempty"`
	Path      string     `json:"path,omitempty"`
	Format    string     `json:"format"`
	From      string     `json:"from,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	fsm.SourceReport
}

func sourceOut(s *fsm.State, name string, problems bool) (sourceJSON, bool) {
	var out sourceJSON
	if name == source.Builtin {
		out = sourceJSON{Name: name, Format: source.FormatProximity}
		if s.Catalog != nil {
			out.From = s.Catalog.Source
			if s.Catalog.Report != nil {
				out.SourceReport = *s.Catalog.Report
			} else {
				out.SourceReport = fsm.SourceReport{Entries: len(s.Catalog.Entries), UpdatedAt: s.Catalog.At, FetchedAt: s.Catalog.At}
			}
		}
	} else {
		src, ok := s.CatalogSources[name]
		if !ok {
			return out, false
		}
		at := src.CreatedAt
		out = sourceJSON{Name: name, URL: src.Spec.URL, Ref: src.Spec.Ref, Path: src.Spec.Path, Format: src.Spec.Format, CreatedAt: &at, SourceReport: src.Report}
	}
	if !problems {
		out.Problems = nil
	} else if out.Problems == nil {
		out.Problems = []catalog.Problem{}
	}
	return out, true
}

func (a *API) listSources(rq *request) (int, any, error) {
	items := []sourceJSON{}
	a.b.FSM().Read(func(s *fsm.State) {
		for _, n := range s.CatalogSourceNames() {
			if o, ok := sourceOut(s, n, false); ok {
				items = append(items, o)
			}
		}
	})
	return http.StatusOK, map[string]any{"items": items}, nil
}

func (a *API) getSource(rq *request) (int, any, error) {
	var out sourceJSON
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { out, ok = sourceOut(s, rq.r.PathValue("name"), true) })
	if !ok {
		return 0, nil, problem.E(problem.NotFound, "catalog source %s does not exist", rq.r.PathValue("name"))
	}
	return http.StatusOK, out, nil
}

// addSource checks the source, fetches it on the leader, and adds it with
// what the fetch gave. A source that cannot be fetched yet is added all
// the same, with the error in its report (a reload tries again).
func (a *API) addSource(rq *request) (int, any, error) {
	var spec source.Spec
	if err := rq.decode(&spec); err != nil {
		return 0, nil, err
	}
	if spec.Name == source.Builtin {
		return 0, nil, problem.E(problem.Conflict, "name: the builtin source exists and cannot be added")
	}
	if err := spec.Validate(); err != nil {
		return 0, nil, err
	}
	if err := source.Available(spec.Format); err != nil {
		return 0, nil, err
	}
	var exists, answered bool
	var n int
	a.b.FSM().Read(func(s *fsm.State) {
		_, exists = s.CatalogSources[spec.Name]
		n, answered = len(s.CatalogSources), rq.key != "" && s.Answered(rq.key)
	})
	rq.auditTargets = append(rq.auditTargets, spec.Name)
	cmd := &fsm.AddCatalogSourceCmd{Spec: spec, At: a.now().UTC()}
	if !answered {
		// A retry of an add that was applied gets its answer without a
		// second fetch (the command's fingerprint is the spec).
		if exists {
			return 0, nil, problem.E(problem.Conflict, "name: catalog source %s exists", spec.Name)
		}
		if n >= fsm.MaxCatalogSources {
			return 0, nil, problem.E(problem.Invalid, "name: at most %d catalog sources", fsm.MaxCatalogSources)
		}
		// The fetch may outlast the request's deadline (not the server's
		// write timeout): it has its own.
		cmd.Fetch = fetchSource(context.WithoutCancel(rq.ctx), spec, a.now())
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(rq.ctx), a.timeout)
	defer cancel()
	res, err := a.b.Propose(pctx, fsm.Command{Type: fsm.CmdAddCatalogSource, RequestID: rq.key, AddCatalogSource: cmd})
	if err != nil {
		return 0, nil, err
	}
	if err := res.Err(); err != nil {
		return 0, nil, a.forCaller(rq, err)
	}
	var out sourceJSON
	a.b.FSM().Read(func(s *fsm.State) { out, _ = sourceOut(s, spec.Name, true) })
	return http.StatusCreated, out, nil
}

func (a *API) deleteSource(rq *request) (int, any, error) {
	name := rq.r.PathValue("name")
	rq.auditTargets = append(rq.auditTargets, name)
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdRemoveCatalogSource, RequestID: rq.key,
		RemoveCatalogSource: &fsm.RemoveCatalogSourceCmd{Name: name}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// reloadResult is one source's outcome of a reload.
type reloadResult struct {
	Name     string `json:"name"`
	Entries  int    `json:"entries"`
	Rejected int    `json:"rejected"`
	Degraded int    `json:"degraded"`
	Commit   string `json:"commit,omitempty"`
	Error    string `json:"error,omitempty"`
}

// reloadCatalog fetches every source on the leader and records each
// through Raft (RefreshCatalog).
func (a *API) reloadCatalog(rq *request) (int, any, error) {
	out, err := a.RefreshCatalog(context.WithoutCancel(rq.ctx))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	// Entries is the catalog's total; Source where the builtin source
	// was read.
	Entries int            `json:"entries"`
	Source  string         `json:"source"`
	Sources []reloadResult `json:"sources"`
}

// RefreshCatalog fetches every source (at most four at a time, each
// within its deadline) and records each through Raft: a source that
// cannot be fetched keeps its entries, a bad entry rejects only itself.
// It runs on the leader: for POST /api/v1/catalog/reload and the
// periodic refresh.
func (a *API) RefreshCatalog(ctx context.Context) (ReloadResult, error) {
	var specs []source.Spec
	a.b.FSM().Read(func(s *fsm.State) {
		for _, n := range s.CatalogSourceNames()[1:] {
			specs = append(specs, s.CatalogSources[n].Spec)
		}
	})
	cmds := make([]*fsm.CatalogFetchedCmd, len(specs)+1)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4)
	for i := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if i == 0 {
				cmds[i] = BuiltinFetch(ctx, a.catalogDir, a.now())
			} else {
				cmds[i] = fetchSource(ctx, specs[i-1], a.now())
			}
		}()
	}
	wg.Wait()
	pctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	out := ReloadResult{Source: cmds[0].From, Sources: []reloadResult{}}
	for _, c := range cmds {
		res, err := a.b.Propose(pctx, fsm.Command{Type: fsm.CmdCatalogFetched, RequestID: NewID("catalog_"), CatalogFetched: c})
		if err != nil {
			return out, err
		}
		r := reloadResult{Name: c.Name}
		if err := res.Err(); err != nil && c.Error == "" {
			r.Error = err.Error()
		}
		a.b.FSM().Read(func(s *fsm.State) {
			if o, ok := sourceOut(s, c.Name, false); ok {
				r.Entries, r.Rejected, r.Degraded, r.Commit = o.Entries, o.Rejected, o.Degraded, o.Commit
				if r.Error == "" {
					r.Error = o.Error
				}
			}
		})
		out.Entries += r.Entries
		out.Sources = append(out.Sources, r)
	}
	return out, nil
}
