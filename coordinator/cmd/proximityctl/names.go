package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/proximity-ve/proximity/internal/validate"
)

// Names: wherever a command takes an app, it takes the app's hostname as
// well as its ID. An argument that starts with "app_" is an ID (a hostname
// cannot hold "_"); anything else is looked up with
// GET /api/v1/apps?hostname=. The resolution is wired once, in
// wireNames, from the placeholder a command's Use names for its first
// argument, so a new command gets it by naming its argument APP (or ID or
// NAME under `app` and `backup`).

// appIDPrefix starts every app ID (api.NewID("app_")).
const appIDPrefix = "app_"

// appID returns the ID of the app that arg names: arg itself when it is an
// ID, else the caller's one app with that hostname. An unknown name is an
// error that exits 1.
func (e *env) appID(arg string) (string, error) {
	if strings.HasPrefix(arg, appIDPrefix) {
		return arg, nil
	}
	host, err := validate.Hostname("app", arg)
	if err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Title: http.StatusText(http.StatusBadRequest),
			Detail: fmt.Sprintf("%q is neither an app ID (%s…) nor a hostname", arg, appIDPrefix)}
	}
	var out struct {
		Items []app `json:"items"`
		Total int   `json:"total"`
	}
	if err := e.call("GET", "/api/v1/apps?per_page=100&hostname="+url.QueryEscape(host), nil, &out); err != nil {
		return "", err
	}
	switch len(out.Items) {
	case 0:
		return "", &apiError{Status: http.StatusNotFound, Title: http.StatusText(http.StatusNotFound),
			Detail: fmt.Sprintf("no app is named %q (see proximityctl app list)", arg)}
	case 1:
		return out.Items[0].ID, nil
	}
	ids := make([]string, len(out.Items))
	for i, a := range out.Items {
		ids[i] = a.ID + " (" + a.Status + ")"
	}
	return "", &apiError{Status: http.StatusConflict, Title: http.StatusText(http.StatusConflict),
		Detail: fmt.Sprintf("%d apps are named %q: %s; name one by its ID", len(out.Items), arg, strings.Join(ids, ", "))}
}

// argKind is what a command's first argument names, from its Use.
type argKind int

const (
	argOther argKind = iota
	argApp
	argCatalog
	argNode
)

// firstArgKind reads the placeholder of cmd's first argument: APP and
// APP_ID anywhere, and ID or NAME under `app` and `backup`, are apps;
// CATALOG_ID (and ID under `catalog`) is a catalog entry; NODE (and NAME under `node`) a node.
func firstArgKind(cmd *cobra.Command) argKind {
	f := strings.Fields(cmd.Use)
	if len(f) < 2 {
		return argOther
	}
	ph := strings.ToUpper(strings.Trim(f[1], "[]<>."))
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	under := top.Name()
	switch {
	case ph == "APP" || ph == "APP_ID":
		return argApp
	case (ph == "ID" || ph == "NAME") && (under == "app" || under == "backup") && top != cmd:
		return argApp
	case ph == "CATALOG_ID" || (ph == "ID" && under == "catalog" && top != cmd):
		return argCatalog
	case ph == "NODE" || (ph == "NAME" && under == "node" && top != cmd):
		return argNode
	}
	return argOther
}

// wireNames walks the command tree once: commands whose first argument is
// an app resolve it (appID) before they run, and offer app hostnames in
// shell completion; catalog and node arguments, and every --node flag,
// complete too.
func wireNames(e *env, root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("node") != nil {
			_ = c.RegisterFlagCompletionFunc("node", e.completer(e.nodeNames))
		}
		if c.RunE == nil {
			return
		}
		kind := firstArgKind(c)
		if c.ValidArgsFunction == nil {
			switch kind {
			case argApp:
				c.ValidArgsFunction = firstArg(e.completer(e.appNames))
				if f := strings.Fields(c.Use); len(f) > 2 && f[2] == "BACKUP_ID" {
					c.ValidArgsFunction = e.appThenBackup()
				}
			case argCatalog:
				c.ValidArgsFunction = firstArg(e.catalogCompleter())
			case argNode:
				c.ValidArgsFunction = firstArg(e.completer(e.nodeNames))
			}
		}
		if kind == argApp {
			run := c.RunE
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					id, err := e.appID(args[0])
					if err != nil {
						return err
					}
					args = append([]string{id}, args[1:]...)
				}
				return run(cmd, args)
			}
		}
	}
	walk(root)
}

type completeFunc = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

// firstArg completes only a command's first argument.
func firstArg(f completeFunc) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// completeDeadline bounds the API calls of shell completion: a shell
// waits for them at every TAB.
const completeDeadline = 2 * time.Second

// completer turns a lister into a completion function that keeps the
// candidates starting with what is typed. It fails silently: no server,
// no token or a refusal offers nothing.
func (e *env) completer(list func(ctx context.Context) []string) completeFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(context.Background(), completeDeadline)
		defer cancel()
		var out []string
		for _, s := range list(ctx) {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// listNames fetches up to 100 items of a list and keeps one field of each,
// with an optional description after a tab (cobra shows it in zsh and fish).
func (e *env) listNames(ctx context.Context, path string, name func(map[string]any) string) []string {
	c, err := e.api()
	if err != nil {
		return nil
	}
	var out struct {
		Items []map[string]any `json:"items"`
	}
	if err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return nil
	}
	var names []string
	for _, it := range out.Items {
		if n := name(it); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// appThenBackup completes an app, then one of its backups (restore,
// delete).
func (e *env) appThenBackup() completeFunc {
	apps := e.completer(e.appNames)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return apps(cmd, args, toComplete)
		case 1:
			app := args[0]
			return e.completer(func(ctx context.Context) []string {
				if !strings.HasPrefix(app, appIDPrefix) {
					ids := e.listNames(ctx, "/api/v1/apps?per_page=100&hostname="+url.QueryEscape(app), func(m map[string]any) string { return str(m, "id") })
					if len(ids) != 1 {
						return nil
					}
					app = ids[0]
				}
				return e.listNames(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/backups?per_page=100", func(m map[string]any) string {
					if str(m, "id") == "" {
						return ""
					}
					return str(m, "id") + "\t" + str(m, "status") + ", " + str(m, "created_at")
				})
			})(cmd, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func (e *env) appNames(ctx context.Context) []string {
	return e.listNames(ctx, "/api/v1/apps?per_page=100", func(m map[string]any) string {
		if str(m, "hostname") == "" {
			return ""
		}
		return str(m, "hostname") + "\t" + str(m, "catalog_id") + ", " + str(m, "status")
	})
}

// catalogCompleter completes catalog ids; once a source is typed
// (SOURCE/...), the ids of that source, so that a large store completes
// too.
func (e *env) catalogCompleter() completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		path := "/api/v1/catalog?per_page=100"
		if src, _, ok := strings.Cut(toComplete, "/"); ok {
			path += "&source=" + url.QueryEscape(src)
		}
		return e.completer(func(ctx context.Context) []string { return e.catalogIDs(ctx, path) })(cmd, args, toComplete)
	}
}

func (e *env) catalogIDs(ctx context.Context, path string) []string {
	return e.listNames(ctx, path, func(m map[string]any) string {
		if str(m, "id") == "" {
			return ""
		}
		return str(m, "id") + "\t" + str(m, "name")
	})
}

func (e *env) nodeNames(ctx context.Context) []string {
	return e.listNames(ctx, "/api/v1/nodes?per_page=100", func(m map[string]any) string {
		if str(m, "name") == "" {
			return ""
		}
		return str(m, "name") + "\t" + str(m, "status")
	})
}
