package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// catalogPath is the API path of a catalog entry: ID, or SOURCE/ID.
func catalogPath(id string) string {
	parts := strings.SplitN(id, "/", 2)
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "/api/v1/catalog/" + strings.Join(parts, "/")
}

// sourceReport is what the source commands show of a source.
type sourceReport struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Ref       string    `json:"ref"`
	Path      string    `json:"path"`
	Format    string    `json:"format"`
	From      string    `json:"from"`
	Entries   int       `json:"entries"`
	Rejected  int       `json:"rejected"`
	Degraded  int       `json:"degraded"`
	Commit    string    `json:"commit"`
	FetchedAt time.Time `json:"fetched_at"`
	Error     string    `json:"error"`
	Problems  []struct {
		ID       string `json:"id"`
		File     string `json:"file"`
		Field    string `json:"field"`
		Reason   string `json:"reason"`
		Rejected bool   `json:"rejected"`
	} `json:"problems"`
}

func (s sourceReport) where() string {
	w := s.URL
	if w == "" {
		w = "builtin: " + s.From
	}
	if s.Ref != "" {
		w += " @" + s.Ref
	}
	if s.Path != "" && s.Path != "." {
		w += " (" + s.Path + ")"
	}
	return w
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return dash(c)
}

func fetched(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func catalogCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Browse the app catalog and manage its sources"}
	var search, category, source string
	list := &cobra.Command{
		Use: "list", Short: "List catalog apps (--search, --category, --source filter)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []struct {
					ID, Name, Version, Category, Source, Tagline string
				} `json:"items"`
				Total int `json:"total"`
			}
			q := url.Values{"per_page": {"100"}}
			for k, v := range map[string]string{"q": search, "category": category, "source": source} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if err := e.call("GET", "/api/v1/catalog?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, c := range out.Items {
				rows = append(rows, []string{c.ID, c.Name, c.Version, c.Category, dash(c.Tagline)})
			}
			if out.Total > len(out.Items) {
				fmt.Fprintf(e.stderr, "showing %d of %d entries; narrow with --search, --category or --source\n", len(out.Items), out.Total)
			}
			return e.print(out, []string{"ID", "NAME", "VERSION", "CATEGORY", "TAGLINE"}, rows)
		},
	}
	list.Flags().StringVar(&search, "search", "", "only entries whose id, name, tagline, description or a tag contains this text (any case)")
	list.Flags().StringVar(&category, "category", "", "only entries of this category (any case; see catalog categories)")
	list.Flags().StringVar(&source, "source", "", "only entries of this source (builtin, or a source's name)")
	var catSource string
	categories := &cobra.Command{
		Use: "categories", Short: "List the catalog's categories and how many apps each has", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []struct {
					Name  string `json:"name"`
					Count int    `json:"count"`
				} `json:"items"`
			}
			path := "/api/v1/catalog/categories"
			if catSource != "" {
				path += "?source=" + url.QueryEscape(catSource)
			}
			if err := e.call("GET", path, nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, c := range out.Items {
				rows = append(rows, []string{c.Name, strconv.Itoa(c.Count)})
			}
			return e.print(out, []string{"CATEGORY", "APPS"}, rows)
		},
	}
	categories.Flags().StringVar(&catSource, "source", "", "count only this source's entries")
	show := &cobra.Command{
		Use: "show ID", Short: "Show a catalog entry's settings (ID or SOURCE/ID; -o json: the whole entry)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out catalogEntry
			if err := e.call("GET", catalogPath(args[0]), nil, &out); err != nil {
				return err
			}
			return e.print(out, settingHeader, settingRows(out.Settings))
		},
	}
	reload := &cobra.Command{
		Use: "reload", Short: "Fetch every catalog source on the leader (admin)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e.longFetch(c)
			var out struct {
				Sources []struct {
					Name                        string `json:"name"`
					Entries, Rejected, Degraded int
					Commit, Error               string
				} `json:"sources"`
			}
			if err := e.call("POST", "/api/v1/catalog/reload", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, s := range out.Sources {
				rows = append(rows, []string{s.Name, strconv.Itoa(s.Entries), strconv.Itoa(s.Rejected), strconv.Itoa(s.Degraded), shortCommit(s.Commit), dash(s.Error)})
			}
			return e.print(out, []string{"SOURCE", "ENTRIES", "REJECTED", "DEGRADED", "COMMIT", "ERROR"}, rows)
		},
	}
	cmd.AddCommand(list, categories, show, reload, sourcesCmd(e))
	return cmd
}

func sourcesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "sources", Short: "Manage catalog sources: git repositories and directories (admin)"}
	list := &cobra.Command{
		Use: "list", Short: "List the catalog sources and their last fetch", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out struct {
				Items []sourceReport `json:"items"`
			}
			if err := e.call("GET", "/api/v1/catalog/sources", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, s := range out.Items {
				rows = append(rows, []string{s.Name, s.Format, s.where(), strconv.Itoa(s.Entries), strconv.Itoa(s.Rejected), strconv.Itoa(s.Degraded), shortCommit(s.Commit), dash(s.Error)})
			}
			return e.print(out, []string{"NAME", "FORMAT", "URL", "ENTRIES", "REJECTED", "DEGRADED", "COMMIT", "ERROR"}, rows)
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a source's report: every rejected and degraded entry with its file, field and reason", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out sourceReport
			if err := e.call("GET", "/api/v1/catalog/sources/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return e.printSource(out)
		},
	}
	var in struct {
		URL    string `json:"url"`
		Ref    string `json:"ref,omitempty"`
		Path   string `json:"path,omitempty"`
		Format string `json:"format"`
	}
	add := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add a catalog source and fetch it",
		Long: `Add a catalog source and fetch it on the leader. URL is a git repository,
https://HOST/REPO (public) or file:///PATH (on the leader), or a directory on
the coordinators, dir:///PATH. The source's entries are NAME/ID.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e.longFetch(c)
			body := map[string]string{"name": args[0], "url": args[1], "format": in.Format}
			if in.Ref != "" {
				body["ref"] = in.Ref
			}
			if in.Path != "" {
				body["path"] = in.Path
			}
			var out sourceReport
			if err := e.call("POST", "/api/v1/catalog/sources", body, &out); err != nil {
				return err
			}
			return e.printSource(out)
		},
	}
	add.Flags().StringVar(&in.Format, "format", "proximity", "the source's format: proximity, casaos or runtipi")
	add.Flags().StringVar(&in.Ref, "ref", "", "git: the branch, tag or commit to read (default: the repository's HEAD)")
	add.Flags().StringVar(&in.Path, "path", "", "the directory of the source that holds the store (default: its top)")
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a catalog source and its entries (apps deployed from them keep running)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.call("DELETE", "/api/v1/catalog/sources/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return e.print(map[string]string{"removed": args[0]}, []string{"REMOVED"}, [][]string{{args[0]}})
		},
	}
	cmd.AddCommand(list, show, add, remove)
	return cmd
}

// longFetch gives a command that fetches sources on the leader (up to 45 s
// each) 90 s unless --timeout was given.
func (e *env) longFetch(c *cobra.Command) {
	if f := c.Flag("timeout"); f != nil && !f.Changed {
		e.timeout = 90 * time.Second
	}
}

// printSource writes a source's report: a summary, then one line per
// rejected or degraded entry.
func (e *env) printSource(s sourceReport) error {
	if e.output != "table" {
		return e.print(s, nil, nil)
	}
	fmt.Fprintf(e.stdout, "source %s (%s): %s\n", s.Name, s.Format, s.where())
	fmt.Fprintf(e.stdout, "entries %d, rejected %d, degraded %d; commit %s; fetched %s\n", s.Entries, s.Rejected, s.Degraded, shortCommit(s.Commit), fetched(s.FetchedAt))
	if s.Error != "" {
		fmt.Fprintf(e.stdout, "last fetch failed (the entries of the last good fetch are kept): %s\n", s.Error)
	}
	if len(s.Problems) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	var rows [][]string
	for _, p := range s.Problems {
		what := "degraded"
		if p.Rejected {
			what = "rejected"
		}
		rows = append(rows, []string{what, dash(p.ID), dash(p.File), dash(p.Field), p.Reason})
	}
	return e.print(s, []string{"", "ID", "FILE", "FIELD", "REASON"}, rows)
}
