package fsm

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/catalog/source"
	"github.com/proximity-ve/proximity/internal/problem"
)

// MaxCatalogSources bounds the sources an admin may add.
const MaxCatalogSources = 32

// CatalogSource is a source an admin added, its entries from the last
// good fetch and its report.
type CatalogSource struct {
	Spec      source.Spec     `json:"spec"`
	CreatedAt time.Time       `json:"created_at"`
	Entries   []catalog.Entry `json:"entries"`
	Report    SourceReport    `json:"report"`
}

// SourceReport is what the last fetches of a source gave.
type SourceReport struct {
	// Entries, Rejected and Degraded count the last good fetch's entries
	// and problems.
	Entries  int `json:"entries"`
	Rejected int `json:"rejected"`
	Degraded int `json:"degraded"`
	// Commit is the git commit of the last good fetch.
	Commit string `json:"commit,omitempty"`
	// FetchedAt is the last attempt; Error its failure ("" when it
	// worked); UpdatedAt the last attempt that replaced the entries.
	FetchedAt time.Time `json:"fetched_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Error     string    `json:"error,omitempty"`
	// Problems are the last good fetch's rejected and degraded entries.
	Problems []catalog.Problem `json:"problems"`
}

// AddCatalogSourceCmd adds a source (with the result of its first fetch,
// if it worked).
type AddCatalogSourceCmd struct {
	Spec  source.Spec        `json:"spec"`
	At    time.Time          `json:"at"`
	Fetch *CatalogFetchedCmd `json:"fetch,omitempty"`
}

// RemoveCatalogSourceCmd removes a source and its entries.
type RemoveCatalogSourceCmd struct {
	Name string `json:"name"`
}

// CatalogFetchedCmd records one fetch of a source. When Error is set the
// entries stay as they were; otherwise they are replaced. Spec must still
// be the source's (a source removed and added again while it was fetched
// is not changed by the old fetch). For the builtin source, From says
// where it was read ("starter" or a directory).
type CatalogFetchedCmd struct {
	Name     string            `json:"name"`
	Spec     source.Spec       `json:"spec"`
	From     string            `json:"from,omitempty"`
	At       time.Time         `json:"at"`
	Error    string            `json:"error,omitempty"`
	Entries  []catalog.Entry   `json:"entries,omitempty"`
	Problems []catalog.Problem `json:"problems,omitempty"`
	Commit   string            `json:"commit,omitempty"`
}

func (s *State) addCatalogSource(c AddCatalogSourceCmd) error {
	spec := c.Spec
	if err := spec.Validate(); err != nil {
		return err
	}
	if _, ok := s.CatalogSources[spec.Name]; ok {
		return problem.E(problem.Conflict, "name: catalog source %s exists", spec.Name)
	}
	if len(s.CatalogSources) >= MaxCatalogSources {
		return problem.E(problem.Invalid, "name: at most %d catalog sources", MaxCatalogSources)
	}
	if s.CatalogSources == nil {
		s.CatalogSources = map[string]*CatalogSource{}
	}
	s.CatalogSources[spec.Name] = &CatalogSource{Spec: spec, CreatedAt: c.At.UTC(), Entries: []catalog.Entry{}, Report: SourceReport{Problems: []catalog.Problem{}}}
	if c.Fetch != nil {
		f := *c.Fetch
		f.Name, f.Spec = spec.Name, spec
		return s.catalogFetched(f)
	}
	return nil
}

func (s *State) removeCatalogSource(c RemoveCatalogSourceCmd) error {
	if c.Name == source.Builtin {
		return problem.E(problem.Invalid, "name: the builtin source cannot be removed")
	}
	if _, ok := s.CatalogSources[c.Name]; !ok {
		return problem.E(problem.NotFound, "catalog source %s does not exist", c.Name)
	}
	delete(s.CatalogSources, c.Name)
	return nil
}

func (s *State) catalogFetched(c CatalogFetchedCmd) error {
	at := c.At.UTC()
	if len(c.Entries) > source.MaxEntries || len(c.Problems) > source.MaxProblems {
		return problem.E(problem.Invalid, "catalog: a source keeps at most %d entries", source.MaxEntries)
	}
	var rep *SourceReport
	if c.Name == source.Builtin {
		if s.Catalog == nil {
			if c.Error != "" || len(c.Entries) == 0 {
				// Nothing to keep yet: a cluster without a catalog stays so.
				if c.Error == "" {
					return problem.E(problem.Invalid, "catalog: no entries")
				}
				return problem.E(problem.Invalid, "catalog: %s", c.Error)
			}
			s.Catalog = &CatalogState{}
		}
		if c.Error == "" && len(c.Entries) == 0 {
			c.Error = "no valid entry: the builtin catalog is kept as it was"
			if len(c.Problems) > 0 {
				p := c.Problems[0]
				c.Error += fmt.Sprintf(" (%d problems; the first: %s: %s: %s)", len(c.Problems), p.File, p.Field, p.Reason)
			}
		}
		if s.Catalog.Report == nil {
			s.Catalog.Report = &SourceReport{Problems: []catalog.Problem{}}
		}
		rep = s.Catalog.Report
		if c.Error == "" {
			s.Catalog.Entries, s.Catalog.Source, s.Catalog.At = c.Entries, c.From, at
		}
	} else {
		src, ok := s.CatalogSources[c.Name]
		if !ok {
			return problem.E(problem.NotFound, "catalog source %s does not exist", c.Name)
		}
		if src.Spec != c.Spec {
			return problem.E(problem.Conflict, "catalog source %s changed while it was fetched", c.Name)
		}
		rep = &src.Report
		if c.Error == "" {
			for _, e := range c.Entries {
				if e.Source != c.Name || !strings.HasPrefix(e.ID, c.Name+"/") {
					return problem.E(problem.Invalid, "catalog: entry %s is not of source %s", e.ID, c.Name)
				}
			}
			src.Entries = append([]catalog.Entry{}, c.Entries...)
			// CatalogEntry searches them by id.
			sort.Slice(src.Entries, func(i, j int) bool { return src.Entries[i].ID < src.Entries[j].ID })
		}
	}
	rep.FetchedAt, rep.Error = at, c.Error
	if c.Error != "" {
		return nil
	}
	rep.UpdatedAt, rep.Commit, rep.Entries = at, c.Commit, len(c.Entries)
	rep.Problems = append([]catalog.Problem{}, c.Problems...)
	rep.Rejected, rep.Degraded = 0, 0
	counted := map[string]bool{}
	for _, p := range c.Problems {
		key := p.File + "\x00" + p.ID
		if p.Field == "(report)" || counted[key] {
			continue
		}
		counted[key] = true
		if p.Rejected {
			rep.Rejected++
		}
	}
	degraded := map[string]bool{}
	for _, p := range c.Problems {
		if !p.Rejected && p.Field != "(report)" {
			degraded[p.File+"\x00"+p.ID] = true
		}
	}
	rep.Degraded = len(degraded)
	return nil
}

// Answered says whether a command with this request ID was applied (and
// its answer is remembered): a retried request is not done twice.
func (s *State) Answered(requestID string) bool {
	_, ok := s.Dedup[requestID]
	return ok
}

// CatalogSourceNames lists the sources: builtin first, then the added
// ones by name.
func (s *State) CatalogSourceNames() []string {
	out := []string{source.Builtin}
	for n := range s.CatalogSources {
		out = append(out, n)
	}
	sort.Strings(out[1:])
	return out
}

// CatalogEntries calls fn for every entry of the catalog, builtin first,
// then each source's in name order, until fn returns false.
func (s *State) CatalogEntries(fn func(e catalog.Entry) bool) {
	if s.Catalog != nil {
		for _, e := range s.Catalog.Entries {
			if !fn(e) {
				return
			}
		}
	}
	for _, n := range s.CatalogSourceNames()[1:] {
		for _, e := range s.CatalogSources[n].Entries {
			if !fn(e) {
				return
			}
		}
	}
}

// CatalogEntry returns one entry of the catalog: a builtin entry by its
// bare id (or "builtin/id"), another source's by "source/id".
func (s *State) CatalogEntry(id string) (catalog.Entry, bool) {
	name, rest, imported := strings.Cut(id, "/")
	if imported && name != source.Builtin {
		src, ok := s.CatalogSources[name]
		if !ok {
			return catalog.Entry{}, false
		}
		i := sort.Search(len(src.Entries), func(i int) bool { return src.Entries[i].ID >= id })
		if i < len(src.Entries) && src.Entries[i].ID == id {
			return src.Entries[i], true
		}
		return catalog.Entry{}, false
	}
	if imported {
		id = rest
	}
	if s.Catalog == nil {
		return catalog.Entry{}, false
	}
	for _, e := range s.Catalog.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return catalog.Entry{}, false
}
