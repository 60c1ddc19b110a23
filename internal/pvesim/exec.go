package pvesim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
			code := 0
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
