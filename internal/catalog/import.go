package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// Import reads every *.yaml file of dir in fsys, Proximity's own format
// (one entry per file). Unlike Load, a bad file rejects only its own
// entry: every error becomes a Problem naming the file and the field, and
// the other entries are kept. Entries are sorted by ID; an ID used twice
// keeps the first file (in name order) and rejects the others.
func Import(fsys fs.FS, dir string) ImportResult {
	out := ImportResult{Entries: []Entry{}, Problems: []Problem{}}
	files, err := fs.Glob(fsys, path.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		out.Problems = append(out.Problems, Problem{File: dir, Field: "(directory)", Reason: "no *.yaml catalog files", Rejected: true})
		return out
	}
	seen := map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			out.Problems = append(out.Problems, Problem{File: f, Field: "(file)", Reason: err.Error(), Rejected: true})
			continue
		}
		e, err := Parse(f, b)
		if err != nil {
			out.Problems = append(out.Problems, Problems(e.ID, f, err)...)
			continue
		}
		if prev, ok := seen[e.ID]; ok {
			out.Problems = append(out.Problems, Problem{ID: e.ID, File: f, Field: "id", Reason: fmt.Sprintf("%q is also the id of %s", e.ID, prev), Rejected: true})
			continue
		}
		seen[e.ID] = f
		e.File = f
		out.Entries = append(out.Entries, e)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].ID < out.Entries[j].ID })
	return out
}

// Problems turns a validation error (one *Error or several joined) into
// rejections of the entry id of file.
func Problems(id, file string, err error) []Problem {
	var out []Problem
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *Error
		if errors.As(err, &ce) {
			out = append(out, Problem{ID: id, File: ce.File, Field: ce.Field, Reason: ce.Msg, Rejected: true})
			return
		}
		out = append(out, Problem{ID: id, File: file, Field: "(entry)", Reason: err.Error(), Rejected: true})
	}
	walk(err)
	return out
}
