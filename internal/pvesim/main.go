package pvesim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Tools are the Proxmox commands the simulator answers to by name.
var Tools = []string{"pct", "vzdump", "pveam", "nft"}

// Stdin is what the simulated tools read as standard input.
var Stdin io.Reader = os.Stdin

// Main runs the simulator as the program named by argv0: `pct`, `vzdump`
// and `pveam` behave as Proxmox's tools; `pvesim` takes init, serve,
// fault, take, or a tool name and its arguments. It returns the exit
// status. State is in env("PVESIM_DIR"), the node name env("PVESIM_NODE").
func Main(argv0 string, args []string, env func(string) string, stdout, stderr io.Writer) int {
	st, err := Open(env("PVESIM_DIR"), env("PVESIM_NODE"))
	if err != nil {
		fmt.Fprintln(stderr, "pvesim:", err)
		return 2
	}
	name := filepath.Base(argv0)
	if name == "pvesim" && len(args) > 0 {
		switch args[0] {
		case "pct", "vzdump", "pveam", "nft":
			name, args = args[0], args[1:]
		}
	}
	switch name {
	case "pct":
		return (&pct{st: st, stdout: stdout, stderr: stderr}).run(args)
	case "pveam":
		return (&pveam{st: st, stdout: stdout, stderr: stderr}).run(args)
	case "vzdump":
		return vzdump(st, args, stdout, stderr)
	case "nft":
		return nft(st, args, stdout, stderr)
	case "pvesim":
		return pvesimCmd(st, args, env, stdout, stderr)
	}
	fmt.Fprintf(stderr, "pvesim: %s is not simulated (simulated: %v)\n", name, Tools)
	return 2
}

const usage = `usage: pvesim init
       pvesim serve --addr HOST:PORT [--token USER@REALM!ID=SECRET]
       pvesim fault [clear] [latency=D] [task-time=D] [fail=TYPES] [fail-rate=F] [fail-next=N] [hang=TYPES] [crash=TYPES] [string-vmid=1]
       pvesim take VMID [--vm]
       pvesim pct|vzdump|pveam ARGS (or run as pct, vzdump or pveam through a symlink)`

func pvesimCmd(st *Store, args []string, env func(string) string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 1 && args[0] == "init":
		if err = st.Init(); err == nil {
			fmt.Fprintf(stdout, "initialized node %s in %s\n", st.Node, st.Dir)
		}
	case len(args) >= 1 && args[0] == "serve":
		err = serveCmd(st, args[1:], env, stdout)
	case len(args) >= 1 && args[0] == "fault":
		var f Faults
		if f, err = ParseFaults(args[1:]); err == nil {
			err = st.SetFaults(f)
		}
	case (len(args) == 2 || len(args) == 3 && args[2] == "--vm") && args[0] == "take":
		var id int
		if id, err = strconv.Atoi(args[1]); err == nil {
			err = st.Take(id, len(args) == 3)
		}
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "pvesim:", err)
		return 1
	}
	return 0
}

// RunAsTool makes the current binary behave as pct, vzdump or pveam when
// it was started through a link of that name, and exits; otherwise it
// returns. Binaries that embed a simulated node (the agent with
// the agent built with -tags simulate, proximity-dev, test binaries) call it first
// thing in main so the adapter can run them as the Proxmox tools.
func RunAsTool() {
	name := filepath.Base(os.Args[0])
	for _, t := range Tools {
		if t == name {
			os.Exit(Main(name, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
		}
	}
}
