package lxcfit

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/proximity-ve/proximity/internal/catalog"
)

var nonIDRE = regexp.MustCompile(`[^a-z0-9]+`)

// CleanID makes a catalog id of a store's name for an app: lower case,
// runs of other characters a dash, at most 40 characters.
func CleanID(s string) string {
	s = strings.Trim(nonIDRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	return s
}

// Category makes a catalog category of a store's: lower case, dashes.
func Category(s string) string {
	if c := CleanID(s); c != "" {
		return c
	}
	return "other"
}

// Localized picks the English text of a map by locale (en_us, en_US,
// en, else the first locale in order), or the text itself.
func Localized(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return strings.TrimSpace(str(v))
	}
	keys := sortedKeys(m)
	for _, want := range []string{"en_us", "en_gb", "en"} {
		for _, k := range keys {
			if strings.EqualFold(k, want) && strings.TrimSpace(str(m[k])) != "" {
				return strings.TrimSpace(str(m[k]))
			}
		}
	}
	for _, k := range keys {
		if s := strings.TrimSpace(str(m[k])); s != "" {
			return s
		}
	}
	return ""
}

// Describe makes an entry's description of a store's one-line summary
// (a tagline, a short description) and its longer text, either of which
// may be missing; name when both are.
func Describe(summary, description, name string) string {
	switch {
	case summary != "" && description != "" && !strings.HasPrefix(description, summary):
		return summary + "\n\n" + description
	case description != "":
		return description
	case summary != "":
		return summary
	}
	return name
}

// ReadFile reads a store file, refusing one larger than MaxFileSize.
func ReadFile(fsys fs.FS, name string) ([]byte, error) {
	if st, err := fs.Stat(fsys, name); err == nil && st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a store file may have", st.Size(), MaxFileSize)
	}
	return fs.ReadFile(fsys, name)
}

// Collector gathers a store's entries: a later entry whose id is taken
// is rejected, and the entries come out sorted by id.
type Collector struct {
	res  catalog.ImportResult
	seen map[string]string
}

// Add records the outcome of the app read from file.
func (c *Collector) Add(file string, e catalog.Entry, problems []catalog.Problem, ok bool) {
	if c.seen == nil {
		c.seen = map[string]string{}
	}
	if prev, dup := c.seen[e.ID]; ok && dup {
		ok = false
		problems = append(problems, catalog.Problem{ID: e.ID, File: file, Field: "id", Reason: fmt.Sprintf("%q is also the id of the app in %s", e.ID, prev), Rejected: true})
	}
	c.res.Problems = append(c.res.Problems, problems...)
	if ok {
		c.seen[e.ID] = file
		c.res.Entries = append(c.res.Entries, e)
	}
}

// Guard runs one app's import so that a failure of the importer on that
// app (a panic: a bug, which the fuzz tests hunt) rejects only the app and
// never stops the store's other apps or the process reading it.
func (c *Collector) Guard(id, file string, imp func() (catalog.Entry, []catalog.Problem, bool)) {
	e, problems, ok, failed := func() (e catalog.Entry, problems []catalog.Problem, ok bool, failed any) {
		defer func() { failed = recover() }()
		e, problems, ok = imp()
		return e, problems, ok, nil
	}()
	if failed != nil {
		c.Reject(id, file, "(importer)", fmt.Sprintf("the importer failed on this app: %v", failed))
		return
	}
	c.Add(file, e, problems, ok)
}

// Reject records an app that could not be read at all.
func (c *Collector) Reject(id, file, field, reason string) {
	c.res.Problems = append(c.res.Problems, catalog.Problem{ID: id, File: file, Field: field, Reason: reason, Rejected: true})
}

// Result is what the store gave.
func (c *Collector) Result() catalog.ImportResult {
	sort.Slice(c.res.Entries, func(i, j int) bool { return c.res.Entries[i].ID < c.res.Entries[j].ID })
	return c.res
}
