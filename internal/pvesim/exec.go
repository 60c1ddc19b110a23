package pvesim

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
)

// IPv4 is the address a running container reports on eth0: the static
// address of net0 when it has one, otherwise a DHCP lease derived from the
// VMID. Stopped containers and those without net0 have none.
func (ct *CT) IPv4() string {
	net, ok := ct.Config["net0"]
	if !ok || ct.Status != "running" {
		return ""
	}
	for _, kv := range strings.Split(net, ",") {
		if v, ok := strings.CutPrefix(kv, "ip="); ok && v != "dhcp" && v != "manual" {
			return v
		}
	}
	return fmt.Sprintf("10.%d.%d.%d/16", 100+ct.VMID/65536%100, ct.VMID/256%256, ct.VMID%256)
}

// exec is `pct exec <vmid> [--keep-env] -- <command> [args]`: the exit
// status is the command's. The container runs no real processes; it
// answers the few commands Proximity's deploy flow uses.
func (c *pct) exec(args []string) int {
	sp := spec{args: []string{"vmid"}, opts: map[string]optKind{"keep-env": optBool}, usage: "pct exec <vmid> [<extra-args>] [OPTIONS]"}
	var cmd []string
	for i, a := range args {
		if a == "--" {
			args, cmd = args[:i], args[i+1:]
			break
		}
	}
	p, err := sp.parse(args)
	if err == nil {
		pe := paramErrors{}
		id := vmid(pe, p.pos[0])
		if err = pe.err(sp.usage); err == nil {
			// The command's output is kept until the state lock is
			// released, so a slow reader cannot hold the lock.
			code, out, stdout := 0, &bytes.Buffer{}, c.stdout
			c.stdout = out
			err = c.st.Update(func(n *Node) error {
				ct, err := n.ct(id)
				if err != nil {
					return err
				}
				if ct.Status != "running" {
					return fail("container '%d' not running!", id)
				}
				code = c.run1(ct, cmd)
				return nil
			})
			c.stdout = stdout
			_, _ = out.WriteTo(stdout)
			if err == nil && c.follow != nil {
				return c.follow(stdout)
			}
			if err == nil {
				return code
			}
		}
	}
	fmt.Fprintln(c.stderr, err)
	return 255
}

// run1 runs one command inside ct.
func (c *pct) run1(ct *CT, cmd []string) int {
	if len(cmd) == 0 {
		fmt.Fprintln(c.stderr, "missing command")
		return 255
	}
	if ct.Files == nil {
		ct.Files = map[string]string{}
	}
	arg := func(i int) string {
		if i < len(cmd) {
			return cmd[i]
		}
		return ""
	}
	switch cmd[0] {
	case "sh":
		if len(cmd) == 3 && cmd[1] == "-c" {
			for _, part := range strings.Split(cmd[2], "&&") {
				if code := c.run1(ct, strings.Fields(strings.ReplaceAll(strings.ReplaceAll(part, "'", ""), `"`, ""))); code != 0 {
					return code
				}
			}
			return 0
		}
	case "apt-get":
		return c.aptGet(ct, cmd[1:])
	case "docker":
		return c.docker(ct, cmd[1:])
	case "curl":
		return c.curl(ct, cmd[1:])
	case "true":
		return 0
	case "false":
		return 1
	case "echo":
		fmt.Fprintln(c.stdout, strings.Join(cmd[1:], " "))
		return 0
	case "hostname":
		fmt.Fprintln(c.stdout, ct.Config["hostname"])
		return 0
	case "cat":
		body, ok := ct.Files[arg(1)]
		if !ok {
			fmt.Fprintf(c.stderr, "cat: %s: No such file or directory\n", arg(1))
			return 1
		}
		fmt.Fprint(c.stdout, body)
		return 0
	case "test":
		if _, ok := ct.Files[arg(2)]; ok && (arg(1) == "-f" || arg(1) == "-e") {
			return 0
		}
		return 1
	case "rm":
		delete(ct.Files, cmd[len(cmd)-1])
		return 0
	case "mkdir":
		return 0
	case "ip":
		if strings.Join(cmd[1:], " ") != "-4 addr show dev eth0" {
			break
		}
		ip := ct.IPv4()
		if ip == "" {
			fmt.Fprintln(c.stderr, `Device "eth0" does not exist.`)
			return 1
		}
		fmt.Fprintf(c.stdout, "2: eth0@if%d: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000 link-netnsid 0\n", ct.VMID%1000+10)
		fmt.Fprintf(c.stdout, "    inet %s scope global dynamic eth0\n       valid_lft 86313sec preferred_lft 86313sec\n", ip)
		return 0
	}
	fmt.Fprintf(c.stderr, "lxc-attach: %d: ../src/lxc/attach.c: lxc_attach_run_command: 1841 No such file or directory - Failed to exec \"%s\"\n", ct.VMID, cmd[0])
	return 255
}

// push is `pct push <vmid> <file> <destination>`: it copies a host file
// into the running container.
func (c *pct) push(id int, file, dest string) error {
	body, rerr := os.ReadFile(file)
	return c.st.run(work{typ: "push_file", vmid: id,
		begin: func(n *Node) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			if ct.Status != "running" {
				return fail("can only push files to a running CT")
			}
			if rerr != nil {
				return fail("failed to open %s for reading", file)
			}
			return nil
		},
		body: func(n *Node, t *task) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			if ct.Files == nil {
				ct.Files = map[string]string{}
			}
			ct.Files[dest] = string(body)
			t.log("pushed %s bytes to %s", strconv.Itoa(len(body)), dest)
			return nil
		},
	}, nil)
}

const (
	packagesFile = "/var/lib/pvesim/packages"
	composeState = "/var/lib/pvesim/compose"
)

func (ct *CT) installed(pkg string) bool {
	for _, p := range strings.Fields(ct.Files[packagesFile]) {
		if p == pkg {
			return true
		}
	}
	return false
}

// aptGet knows update and install (any package installs).
func (c *pct) aptGet(ct *CT, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, "E: Invalid operation")
		return 100
	}
	switch args[0] {
	case "update":
		fmt.Fprintln(c.stdout, "Reading package lists... Done")
		return 0
	case "install":
		for _, p := range args[1:] {
			if !strings.HasPrefix(p, "-") && !ct.installed(p) {
				ct.Files[packagesFile] += p + "\n"
				fmt.Fprintf(c.stdout, "Setting up %s ...\n", p)
			}
		}
		return 0
	}
	fmt.Fprintf(c.stderr, "E: Invalid operation %s\n", args[0])
	return 100
}

// docker knows `docker compose [-f FILE] [--project-directory DIR] up -d |
// pull | ps | logs | stop | down` (logs: see composeLogs), with docker.io installed; the project's state
// is kept in the container.
func (c *pct) docker(ct *CT, args []string) int {
	if !ct.installed("docker.io") {
		fmt.Fprintln(c.stderr, "sh: 1: docker: not found")
		return 127
	}
	if len(args) == 0 || args[0] != "compose" {
		fmt.Fprintln(c.stderr, "docker: only `docker compose` is simulated")
		return 1
	}
	file, dir, verb := "", "", ""
	var rest []string // the verb's own arguments
	for i := 1; i < len(args) && verb == ""; i++ {
		switch a := args[i]; {
		case (a == "-f" || a == "--file") && i+1 < len(args):
			file, i = args[i+1], i+1
		case a == "--project-directory" && i+1 < len(args):
			dir, i = args[i+1], i+1
		case !strings.HasPrefix(a, "-"):
			verb, rest = a, args[i+1:]
		}
	}
	if file == "" {
		file = strings.TrimSuffix(dir, "/") + "/compose.yaml"
	}
	doc, ok := ct.Files[file]
	if !ok {
		fmt.Fprintf(c.stderr, "open %s: no such file or directory\n", file)
		return 1
	}
	switch verb {
	case "pull":
		// A test can make the registry refuse the new images.
		if msg, ok := ct.Files["/var/lib/pvesim/fail-pull"]; ok {
			fmt.Fprintln(c.stderr, strings.TrimSpace(msg))
			return 18
		}
		fmt.Fprintln(c.stdout, "Pulled")
	case "up":
		if !ct.installed("docker-compose") {
			fmt.Fprintln(c.stderr, "docker: 'compose' is not a docker command.")
			return 1
		}
		ports, err := catalog.PublishedPorts(doc)
		if err != nil {
			fmt.Fprintf(c.stderr, "yaml: %v\n", err)
			return 15
		}
		// A test can make a configuration unhealthy: while the project's
		// .env holds the text of unhealthy-env, the stack it starts
		// publishes nothing and so answers no health check.
		if bad := ct.Files["/var/lib/pvesim/unhealthy-env"]; bad != "" && strings.Contains(ct.Files[path.Dir(file)+"/.env"], bad) {
			ports = nil
		}
		if _, up := ct.Files[composeState]; !up {
			ct.Files[composeUpAt] = time.Now().UTC().Format(time.RFC3339Nano)
		}
		ct.Files[composeState] = file + "\n" + strings.Join(ports, " ")
		fmt.Fprintln(c.stdout, "Container app-1  Started")
	case "logs":
		return c.composeLogs(ct, doc, rest)
	case "ps":
		if st, ok := ct.Files[composeState]; ok {
			fmt.Fprintf(c.stdout, "NAME    STATUS\napp-1   Up (%s)\n", strings.SplitN(st, "\n", 2)[0])
		}
	case "stop", "down":
		delete(ct.Files, composeState)
		delete(ct.Files, composeUpAt)
	default:
		fmt.Fprintf(c.stderr, "unknown docker compose command %q\n", verb)
		return 1
	}
	return 0
}

// curl answers http://127.0.0.1:PORT/... when a started Compose project
// publishes PORT.
func (c *pct) curl(ct *CT, args []string) int {
	url := ""
	for _, a := range args {
		if strings.HasPrefix(a, "http://") {
			url = strings.TrimPrefix(a, "http://")
		}
	}
	hostport, _, _ := strings.Cut(url, "/")
	host, port, ok := strings.Cut(hostport, ":")
	if !ok {
		port = "80"
	}
	if st, up := ct.Files[composeState]; up && (host == "127.0.0.1" || host == "localhost") {
		for _, p := range strings.Fields(strings.SplitN(st, "\n", 2)[1]) {
			if p == port+"/tcp" {
				return 0
			}
		}
	}
	fmt.Fprintf(c.stderr, "curl: (7) Failed to connect to %s port %s after 0 ms: Couldn't connect to server\n", host, port)
	return 7
}
