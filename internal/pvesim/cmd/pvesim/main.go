// Package main is pvesim, a simulated Proxmox VE node: `pvesim init`, or, called
// as pct through a symlink, Proxmox's pct. See package pvesim.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/proximity-ve/proximity/internal/buildinfo"
	"github.com/proximity-ve/proximity/internal/pvesim"
)

// version and commit are stamped at build time (Makefile: -X main.version,
// -X main.commit).
var (
	version = "dev"
	commit  string
)

func main() {
	if filepath.Base(os.Args[0]) == "pvesim" && len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("pvesim version", buildinfo.String(version, commit))
		return
	}
	os.Exit(pvesim.Main(os.Args[0], os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
