package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// appRestoreCmds are `app restore APP BACKUP_ID [--node NODE]` (in place,
// or onto another node) and `app move APP BACKUP_ID --node NODE` (the same
// with the node required): POST /api/v1/apps/{id}/backups/{bid}/restore.
// `backup restore` is the first of them under `backup`.
func appRestoreCmds(e *env) []*cobra.Command {
	return []*cobra.Command{
		restoreCmd(e, "restore", "Restore an app from a backup, in place or onto another node", false),
		restoreCmd(e, "move", "Move an app to another node from one of its backups", true),
	}
}

// restoreCmd is one restore command; needNode makes --node required.
func restoreCmd(e *env, use, short string, needNode bool) *cobra.Command {
	var node string
	var wait bool
	c := &cobra.Command{
		Use: use + " APP BACKUP_ID", Short: short, Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if needNode && node == "" {
				return fmt.Errorf("--node is required: the node to move the app to")
			}
			var body any
			if node != "" {
				body = map[string]string{"node": node}
			}
			var mark logCursor
			if wait {
				mark = e.logMark(args[0])
			}
			var a app
			if err := e.call("POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/backups/"+url.PathEscape(args[1])+"/restore", body, &a); err != nil {
				return err
			}
			if !wait {
				return e.print(a, appHeader, [][]string{a.row()})
			}
			if err := e.wait(waitFor{app: a.ID, shown: mark}); err != nil {
				return err
			}
			if node == "" {
				return nil
			}
			// A move that failed leaves the app running where it was.
			var after app
			if err := e.call("GET", "/api/v1/apps/"+url.PathEscape(a.ID), nil, &after); err != nil {
				return err
			}
			if after.Node != node {
				return &waitError{fmt.Sprintf("%s stayed on %s: %s", a.ID, after.Node, after.Error)}
			}
			return nil
		},
	}
	help := "the node to restore onto: another node than the app's moves the app there (its backup must be on a storage that node reads)"
	if needNode {
		help = "the node to move the app to (the backup must be on a storage that node reads: a shared one)"
	}
	c.Flags().StringVar(&node, "node", "", help)
	c.Flags().BoolVar(&wait, "wait", false, "show the progress until the operation ends (within --timeout); exit 1 if a move left the app where it was")
	return c
}
