package pvesim

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Main runs the simulator as the program named by argv0: `pct` behaves as
// Proxmox's pct; `pvesim` takes `init` or `pct ...`. It returns the exit
// status. State is in env("PVESIM_DIR"), the node name env("PVESIM_NODE").
func Main(argv0 string, args []string, env func(string) string, stdout, stderr io.Writer) int {
	st, err := Open(env("PVESIM_DIR"), env("PVESIM_NODE"))
	if err != nil {
		fmt.Fprintln(stderr, "pvesim:", err)
		return 2
	}
	switch name := filepath.Base(argv0); name {
	case "pct":
		return (&pct{st: st, stdout: stdout, stderr: stderr}).run(args)
	case "pveam":
		return (&pveam{st: st, stdout: stdout, stderr: stderr}).run(args)
	case "pvesim":
		if len(args) > 0 && args[0] == "pct" {
			return (&pct{st: st, stdout: stdout, stderr: stderr}).run(args[1:])
		}
		if len(args) == 1 && args[0] == "init" {
			if err := st.Init(); err != nil {
				fmt.Fprintln(stderr, "pvesim:", err)
				return 1
			}
			fmt.Fprintf(stdout, "initialized node %s in %s\n", st.Node, st.Dir)
			return 0
		}
		fmt.Fprintln(stderr, "usage: pvesim init | pvesim pct ARGS (or run as pct through a symlink)")
		return 2
	default:
		fmt.Fprintf(stderr, "pvesim: %s is not simulated yet (simulated: %s)\n", name, strings.Join([]string{"pct", "pveam"}, ", "))
		return 2
	}
}
