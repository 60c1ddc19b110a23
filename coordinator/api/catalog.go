package api

import (
	"net/http"
	"os"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// LoadCatalog reads the catalog from dir, or the starter catalog when dir
// is empty. Errors name every bad file and field.
func LoadCatalog(dir string) ([]catalog.Entry, string, error) {
	if dir == "" {
		e, err := catalog.Starter()
		return e, "starter", err
	}
	e, err := catalog.Load(os.DirFS(dir), ".")
	return e, dir, err
}

func (a *API) listCatalog(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	out := page[catalog.Entry]{Items: []catalog.Entry{}, Page: pg, PerPage: per}
	a.b.FSM().Read(func(s *fsm.State) {
		if s.Catalog == nil {
			return
		}
		out.Total = len(s.Catalog.Entries)
		out.Items = append(out.Items, validate.PageOf(s.Catalog.Entries, pg, per)...)
	})
	return http.StatusOK, out, nil
}

func (a *API) getCatalogEntry(rq *request) (int, any, error) {
	var e catalog.Entry
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { e, ok = s.CatalogEntry(rq.r.PathValue("id")) })
	if !ok {
		return 0, nil, problem.E(problem.NotFound, "catalog entry %s does not exist", rq.r.PathValue("id"))
	}
	return http.StatusOK, e, nil
}

// reloadCatalog reads the catalog files on the leader and replaces the
// catalog through Raft; a catalog with any invalid file replaces nothing.
func (a *API) reloadCatalog(rq *request) (int, any, error) {
	entries, source, err := LoadCatalog(a.catalogDir)
	if err != nil {
		return 0, nil, problem.E(problem.Invalid, "the catalog was not replaced: %v", err)
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetCatalog, RequestID: rq.key,
		SetCatalog: &fsm.CatalogState{Entries: entries, Source: source, At: a.now()}}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"entries": len(entries), "source": source}, nil
}
