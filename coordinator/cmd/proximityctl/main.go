// Package main is proximityctl, the operator command line for a Proximity
// cluster. It reads the API address from PROXIMITY_ADDR (HTTPS only), the
// token from PROXIMITY_TOKEN and the CA that verifies the server from
// PROXIMITY_CACERT, or from the session that `proximityctl login` stores
// (identity.go); connect.go says how the server is trusted.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one command line and returns the exit status: 0 on
// success, 1 when the server refused or failed, 2 for usage errors.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runIn(os.Stdin, args, stdout, stderr, getenv)
}

// runIn is run with stdin as the standard input that prompts read.
func runIn(stdin io.Reader, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root, e := newRoot(stdout, stderr, getenv)
	e.stdin = stdin
	defer e.close()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "proximityctl:", err)
		if _, ok := err.(*apiError); ok {
			return 1
		}
		if _, ok := err.(*waitError); ok {
			return 1 // an operation that failed, or a wait that timed out
		}
		return 2
	}
	return 0
}
