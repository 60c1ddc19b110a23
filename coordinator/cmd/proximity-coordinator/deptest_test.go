package main

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are what no production binary may link: the simulator, the
// development default's agent in process, test helpers. The coordinator
// does not speak to Proxmox at all, so it links no Proxmox client either;
// the agent does, and only it.
var forbidden = map[string][]string{
	"github.com/proximity-ve/proximity/coordinator/cmd/proximity-coordinator": {
		"github.com/proximity-ve/proximity/agent", "github.com/proximity-ve/proximity/internal/pvesim",
		"github.com/proximity-ve/proximity/internal/pve", "github.com/luthermonson/go-proxmox",
		"github.com/proximity-ve/proximity/internal/testutil",
	},
	"github.com/proximity-ve/proximity/coordinator/cmd/proximityctl": {
		"github.com/proximity-ve/proximity/agent", "github.com/proximity-ve/proximity/internal/pvesim",
		"github.com/proximity-ve/proximity/internal/pve", "github.com/luthermonson/go-proxmox",
		"github.com/proximity-ve/proximity/internal/testutil",
	},
	"github.com/proximity-ve/proximity/agent/cmd/proximity-agent": {
		"github.com/proximity-ve/proximity/internal/pvesim", "github.com/proximity-ve/proximity/agent/simnode",
		"github.com/proximity-ve/proximity/internal/testutil",
	},
}

// TestProductionBinariesLinkNoSimulator lists every package each packaged
// binary links, as `go build` would without tags, and fails on any of
// their forbidden ones (and names the importer that pulls it in).
func TestProductionBinariesLinkNoSimulator(t *testing.T) {
	for bin, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, bin).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", bin, err)
		}
		linked := map[string]bool{}
		importers := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			linked[f[0]] = true
			for _, imp := range f[1:] {
				if _, seen := importers[imp]; !seen {
					importers[imp] = f[0]
				}
			}
		}
		for _, pkg := range bad {
			if linked[pkg] {
				t.Errorf("%s links %s (imported by %s)", bin, pkg, importers[pkg])
			}
		}
	}
}
