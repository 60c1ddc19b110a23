// Package main is pvesim, a simulated Proxmox VE node: `pvesim init`, or, called
// as pct through a symlink, Proxmox's pct. See package pvesim.
package main

import (
	"os"

	"github.com/proximity-ve/proximity/internal/pvesim"
)

func main() {
	os.Exit(pvesim.Main(os.Args[0], os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
