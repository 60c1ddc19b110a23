package pve

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// toolUmaskEnv, when set in a process's environment, makes RunToolWithUmask
// turn that process into the Proxmox tool named by its first argument,
// with the umask the variable holds (octal).
const toolUmaskEnv = "PROXIMITY_TOOL_UMASK"

// ToolUmask is the umask the Proxmox tools run with: the agent itself runs
// with a strict one (UMask=0077 in its unit), but pct creates the
// directories of unprivileged containers, which their mapped root user
// must traverse, and what pct exec runs inside a container (apt, docker)
// must leave files its services can read.
const ToolUmask = 0o022

// RunToolWithUmask is the first thing a binary that runs the Proxmox tools
// through Local calls in main: when Local re-executed it to start a tool,
// it sets the umask and executes the tool in its place (same process, same
// process group, so deadlines still reach it). Otherwise it returns at
// once.
func RunToolWithUmask() {
	v, ok := os.LookupEnv(toolUmaskEnv)
	if !ok {
		return
	}
	mask, err := strconv.ParseUint(v, 8, 32)
	if err != nil || len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "%s=%q: not a umask, or no tool to run\n", toolUmaskEnv, v)
		os.Exit(127)
	}
	os.Unsetenv(toolUmaskEnv)
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(127)
	}
	syscall.Umask(int(mask))
	err = syscall.Exec(path, os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", path, err)
	os.Exit(127)
}

// toolCommand is the program and arguments that run tool with the tools'
// umask: the running binary again, which RunToolWithUmask turns into the
// tool.
func toolCommand(tool string, args []string) (string, []string, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, nil, fmt.Errorf("find this program to start %s: %w", tool, err)
	}
	return self, append([]string{tool}, args...), []string{toolUmaskEnv + "=" + strconv.FormatUint(ToolUmask, 8)}, nil
}
