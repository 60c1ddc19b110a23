package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

// appURL is one of an app's URLs as the API shows it.
type appURL struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Main bool   `json:"main"`
}

// browserTimeout bounds the command that hands a URL to the browser.
const browserTimeout = 15 * time.Second

// openInBrowser hands u to the desktop's opener (xdg-open, or open on
// macOS). Tests replace it.
var openInBrowser = func(ctx context.Context, u string) error {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	out, err := exec.CommandContext(ctx, name, u).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, u, err, out)
	}
	return nil
}

// appOpenCmd prints an app's main URL, and with --browser opens it.
func appOpenCmd(e *env) *cobra.Command {
	var browser bool
	cmd := &cobra.Command{
		Use:   "open APP [--browser]",
		Short: "Print the app's main URL; with --browser, open it",
		Long: `Print the main URL of an app: its node's address and the public port of the catalog
port people open (the health check's, or the first HTTP one). With --browser, hand it to
the desktop's browser (xdg-open, or open on macOS). -o json prints the URL's
{"name","url","main"} as the API shows it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var a struct {
				ID       string   `json:"id"`
				Hostname string   `json:"hostname"`
				Node     string   `json:"node"`
				URLs     []appURL `json:"urls"`
			}
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(args[0]), nil, &a); err != nil {
				return err
			}
			var main *appURL
			for i := range a.URLs {
				if a.URLs[i].Main {
					main = &a.URLs[i]
				}
			}
			if main == nil {
				return &apiError{Status: http.StatusNotFound, Title: http.StatusText(http.StatusNotFound),
					Detail: fmt.Sprintf("app %s (%s) has no URL: its catalog entry has no HTTP port, or node %s has not reported its address yet", a.Hostname, a.ID, a.Node)}
			}
			u, err := url.Parse(main.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("app %s: %q is not an http(s) URL", a.Hostname, main.URL)
			}
			if e.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(main); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(e.stdout, main.URL)
			}
			if browser {
				ctx, cancel := context.WithTimeout(c.Context(), browserTimeout)
				defer cancel()
				return openInBrowser(ctx, u.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&browser, "browser", false, "open the URL in the desktop's browser")
	return cmd
}
