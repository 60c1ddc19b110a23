package pvesim

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var pctSpecs = map[string]spec{
	"list":   {usage: "pct list"},
	"status": {args: []string{"vmid"}, opts: map[string]optKind{"verbose": optBool}, usage: "pct status <vmid> [OPTIONS]"},
	"config": {args: []string{"vmid"}, opts: map[string]optKind{"current": optBool, "snapshot": optString}, usage: "pct config <vmid> [OPTIONS]"},
	"create": {args: []string{"vmid", "ostemplate"}, usage: "pct create <vmid> <ostemplate> [OPTIONS]", opts: map[string]optKind{
		"hostname": optString, "memory": optInt, "swap": optInt, "cores": optInt, "net0": optString,
		"rootfs": optString, "password": optString, "unprivileged": optBool, "features": optString,
		"onboot": optBool, "tags": optString, "start": optBool, "storage": optString, "description": optString,
		"nameserver": optString, "searchdomain": optString, "ostype": optString, "arch": optString,
		"protection": optBool, "ssh-public-keys": optString, "timezone": optString,
	}},
	"start":    {args: []string{"vmid"}, opts: map[string]optKind{"skiplock": optBool, "debug": optBool}, usage: "pct start <vmid> [OPTIONS]"},
	"stop":     {args: []string{"vmid"}, opts: map[string]optKind{"skiplock": optBool, "overrule-shutdown": optBool}, usage: "pct stop <vmid> [OPTIONS]"},
	"shutdown": {args: []string{"vmid"}, opts: map[string]optKind{"timeout": optInt, "forceStop": optBool}, usage: "pct shutdown <vmid> [OPTIONS]"},
	"set": {args: []string{"vmid"}, usage: "pct set <vmid> [OPTIONS]", opts: map[string]optKind{
		"hostname": optString, "memory": optInt, "swap": optInt, "cores": optInt, "net0": optString,
		"features": optString, "onboot": optBool, "tags": optString, "nameserver": optString,
		"searchdomain": optString, "protection": optBool, "description": optString, "delete": optString,
		"digest": optString,
	}},
	"snapshot":     {args: []string{"vmid", "snapname"}, opts: map[string]optKind{"description": optString}, usage: "pct snapshot <vmid> <snapname> [OPTIONS]"},
	"delsnapshot":  {args: []string{"vmid", "snapname"}, opts: map[string]optKind{"force": optBool}, usage: "pct delsnapshot <vmid> <snapname> [OPTIONS]"},
	"listsnapshot": {args: []string{"vmid"}, usage: "pct listsnapshot <vmid>"},
	"rollback":     {args: []string{"vmid", "snapname"}, opts: map[string]optKind{"start": optBool}, usage: "pct rollback <vmid> <snapname> [OPTIONS]"},
	"reboot":       {args: []string{"vmid"}, opts: map[string]optKind{"timeout": optInt}, usage: "pct reboot <vmid> [OPTIONS]"},
	"clone": {args: []string{"vmid", "newid"}, usage: "pct clone <vmid> <newid> [OPTIONS]", opts: map[string]optKind{
		"hostname": optString, "description": optString, "snapname": optString, "full": optBool,
		"storage": optString, "target": optString, "pool": optString, "bwlimit": optInt,
	}},
	"restore": {args: []string{"vmid", "ostemplate"}, usage: "pct restore <vmid> <ostemplate> [OPTIONS]", opts: map[string]optKind{
		"storage": optString, "force": optBool, "unique": optBool, "unprivileged": optBool,
		"hostname": optString, "memory": optInt, "cores": optInt, "ignore-unpack-errors": optBool, "bwlimit": optInt,
		"net0": optString,
	}},
	"push":    {args: []string{"vmid", "file", "destination"}, opts: map[string]optKind{"perms": optString, "user": optString, "group": optString}, usage: "pct push <vmid> <file> <destination> [OPTIONS]"},
	"unlock":  {args: []string{"vmid"}, usage: "pct unlock <vmid>"},
	"destroy": {args: []string{"vmid"}, opts: map[string]optKind{"force": optBool, "purge": optBool, "destroy-unreferenced-disks": optBool}, usage: "pct destroy <vmid> [OPTIONS]"},
}

// pct runs one pct command against the store.
type pct struct {
	st             *Store
	stdout, stderr io.Writer
	// follow, when a command set it, goes on printing after the state
	// lock is released (docker compose logs --follow).
	follow func(io.Writer) int
}

func (c *pct) run(args []string) int {
	if len(args) > 0 && args[0] == "exec" {
		return c.exec(args[1:])
	}
	return runTool("pct", pctSpecs, args, c.stderr, c.dispatch)
}

func (c *pct) dispatch(cmd string, sp spec, p parsed) error {
	if cmd == "list" {
		return c.st.View(c.list)
	}
	pe := paramErrors{}
	id := vmid(pe, p.pos[0])
	if cmd == "create" {
		return c.create(id, pe, sp, p)
	}
	if err := pe.err(sp.usage); err != nil {
		return err
	}
	switch cmd {
	case "status", "config":
		return c.st.View(func(n *Node) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			if cmd == "status" {
				fmt.Fprintf(c.stdout, "status: %s\n", ct.Status)
				return nil
			}
			return c.printConfig(ct)
		})
	case "start":
		return c.start(id, p.opts["skiplock"] == "1")
	case "unlock":
		return c.unlock(id)
	case "restore":
		return c.restore(id, p.pos[1], p.opts)
	case "push":
		return c.push(id, p.pos[1], p.pos[2])
	case "clone":
		newid := vmid(pe, p.pos[1])
		if err := pe.err(sp.usage); err != nil {
			return err
		}
		return c.clone(id, newid, p.opts)
	case "stop", "shutdown", "reboot":
		return c.stop(id, cmd, p.opts["skiplock"] == "1")
	case "destroy":
		return c.destroy(id, p.opts["force"] == "1")
	case "set":
		return c.set(id, sp, p)
	case "snapshot":
		return c.snapshot(id, p.pos[1], p.opts["description"])
	case "delsnapshot":
		return c.delsnapshot(id, p.pos[1])
	case "listsnapshot":
		return c.st.View(func(n *Node) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			c.listsnapshot(ct)
			return nil
		})
	case "rollback":
		return c.rollback(id, p.pos[1], p.opts["start"] == "1")
	}
	return fail("command %s not simulated", cmd)
}

func configMissing(n *Node, id int) error {
	return fail("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n.Name, id)
}

func (n *Node) ct(id int) (*CT, error) {
	ct, ok := n.CTs[id]
	if !ok {
		return nil, configMissing(n, id)
	}
	return ct, nil
}

func locked(ct *CT) error {
	if ct.Lock != "" {
		return fail("CT is locked (%s)", ct.Lock)
	}
	return nil
}

func (c *pct) list(n *Node) error {
	ids := n.VMIDs()
	if len(ids) == 0 {
		return nil
	}
	const format = "%-10s %-10s %-12s %-20s\n"
	fmt.Fprintf(c.stdout, format, "VMID", "Status", "Lock", "Name")
	for _, id := range ids {
		ct := n.CTs[id]
		name := strings.TrimSpace(ct.Config["hostname"])
		if name == "" {
			name = "CT" + strconv.Itoa(id)
		}
		fmt.Fprintf(c.stdout, format, strconv.Itoa(id), ct.Status, ct.Lock, name)
	}
	return nil
}

func (c *pct) printConfig(ct *CT) error {
	keys := make([]string, 0, len(ct.Config))
	for k := range ct.Config {
		if k != "digest" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(c.stdout, "%s: %s\n", k, ct.Config[k])
	}
	return nil
}

func (c *pct) out(line string) { fmt.Fprintln(c.stdout, line) }

// osType guesses ostype from a template file name, as pct does by
// detection after extraction.
func osType(file string) string {
	for _, os := range []string{"debian", "ubuntu", "alpine", "centos", "fedora", "archlinux", "opensuse", "devuan", "gentoo"} {
		if strings.HasPrefix(file, os) {
			return os
		}
	}
	return "unmanaged"
}

func (c *pct) create(id int, pe paramErrors, sp spec, p parsed) error {
	o := p.opts
	if h, ok := o["hostname"]; ok && (len(h) > 255 || !dnsNameRE.MatchString(h)) {
		pe["hostname"] = "invalid format - value does not look like a valid DNS name"
	}
	memory := intOpt(pe, o, "memory", 16, 1<<31, 512)
	swap := intOpt(pe, o, "swap", 0, 1<<31, 512)
	cores := intOpt(pe, o, "cores", 1, 8192, 0)
	if pw, ok := o["password"]; ok && len(pw) < 5 {
		pe["password"] = "value must be at least 5 characters long"
	}
	if err := pe.err(sp.usage); err != nil {
		return err
	}
	tmpl := p.pos[1]
	storage := o["storage"]
	if storage == "" {
		storage = "local"
	}
	rootStorage, size := storage, "4"
	if r, ok := o["rootfs"]; ok {
		d := diskSizeRE.FindStringSubmatch(r)
		if d == nil {
			return paramErrors{"rootfs": "invalid format - unable to parse volume ID '" + r + "'"}.err(sp.usage)
		}
		rootStorage, size = d[1], d[2]
	}
	file := ""
	err := c.st.run(work{typ: "vzcreate", vmid: id, lock: "create",
		begin: func(n *Node) error {
			if err := n.vmidFree(id); err != nil {
				return err
			}
			m := volidRE.FindStringSubmatch(tmpl)
			file = strings.TrimPrefix(m2(m), "vztmpl/")
			if m == nil || !slices.Contains(n.Templates[m1(m)], file) {
				return fail("volume '%s' does not exist", tmpl)
			}
			s, ok := n.Storage(rootStorage)
			if !ok {
				return fail("storage '%s' does not exist", rootStorage)
			}
			if !s.Supports("rootdir") {
				return paramErrors{"storage": fmt.Sprintf("storage '%s' does not support container directories", rootStorage)}.err(sp.usage)
			}
			disk := fmt.Sprintf("vm-%d-disk-0", id)
			cfg := map[string]string{
				"arch": "amd64", "hostname": "CT" + strconv.Itoa(id), "memory": strconv.Itoa(memory),
				"swap": strconv.Itoa(swap), "ostype": osType(file),
				"rootfs":       fmt.Sprintf("%s:%s,size=%sG", rootStorage, disk, size),
				"unprivileged": "1",
			}
			for _, k := range []string{"hostname", "features", "onboot", "tags", "nameserver", "searchdomain", "ostype", "arch", "protection", "unprivileged", "timezone", "description"} {
				if v, ok := o[k]; ok {
					cfg[k] = v
				}
			}
			if cores > 0 {
				cfg["cores"] = strconv.Itoa(cores)
			}
			if v, ok := o["net0"]; ok {
				cfg["net0"] = netConfig(v, id)
			}
			n.CTs[id] = &CT{VMID: id, Config: cfg, Status: "stopped"}
			return nil
		},
		body: func(n *Node, t *task) error {
			t.log("  Logical volume \"vm-%d-disk-0\" created.", id)
			t.log("extracting archive '/var/lib/vz/template/cache/%s'", file)
			t.log("Total bytes read: 524288000 (500MiB, 250MiB/s)")
			t.log("Detected container architecture: amd64")
			if n.CTs[id] == nil {
				return fail("unable to create CT %d - configuration vanished", id)
			}
			return nil
		},
		onFail: func(n *Node) { delete(n.CTs, id) },
	}, c.out)
	if err != nil || o["start"] != "1" {
		return err
	}
	return c.start(id, false)
}

// vmidFree is PVE::Cluster::check_vmid_unused.
func (n *Node) vmidFree(id int) error {
	if _, ok := n.CTs[id]; ok {
		return fail("CT %d already exists on node '%s'", id, n.Name)
	}
	if slices.Contains(n.VMs, id) {
		return fail("VM %d already exists on node '%s'", id, n.Name)
	}
	return nil
}

func m1(m []string) string {
	if m == nil {
		return ""
	}
	return m[1]
}

func m2(m []string) string {
	if m == nil {
		return ""
	}
	return m[2]
}

// netConfig stores a net0 property string as Proxmox prints it: name
// first, then the other keys sorted, with a generated hwaddr.
func netConfig(v string, id int) string {
	kv := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(part, "=")
		kv[k] = val
	}
	if _, ok := kv["hwaddr"]; !ok {
		kv["hwaddr"] = fmt.Sprintf("BC:24:11:%02X:%02X:%02X", (id>>16)&0xff, (id>>8)&0xff, id&0xff)
	}
	if _, ok := kv["type"]; !ok {
		kv["type"] = "veth"
	}
	keys := []string{}
	for k := range kv {
		if k != "name" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := []string{"name=" + kv["name"]}
	for _, k := range keys {
		out = append(out, k+"="+kv[k])
	}
	return strings.Join(out, ",")
}

func (c *pct) start(id int, skiplock bool) error {
	return c.st.run(work{typ: "vzstart", vmid: id,
		begin: func(n *Node) error {
			if ct := n.CTs[id]; ct != nil && ct.Status == "running" {
				return fail("CT %d already running", id)
			}
			return nil
		},
		body: func(n *Node, t *task) error {
			ct, err := n.ct(id)
			switch {
			case err != nil:
				return err
			case ct.Config["template"] == "1":
				return fail("you can't start a CT if it's a template")
			case ct.Status == "running":
				return fail("CT %d already running", id)
			case !skiplock || ct.Lock != "mounted":
				if err := locked(ct); err != nil {
					return err
				}
			}
			n.NextPID++
			ct.Status, ct.PID, ct.Uptime = "running", n.NextPID, time.Now().Unix()
			return nil
		},
	}, c.out)
}

// stop covers stop, shutdown and reboot: the container must exist, run and
// hold no lock (stop --skiplock ignores it).
func (c *pct) stop(id int, cmd string, skiplock bool) error {
	return c.st.run(work{typ: "vz" + cmd, vmid: id,
		begin: func(n *Node) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			if ct.Status != "running" {
				if cmd == "reboot" {
					return fail("VM %d not running", id)
				}
				return fail("CT %d not running", id)
			}
			if skiplock {
				return nil
			}
			return locked(ct)
		},
		body: func(n *Node, t *task) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			ct.Status, ct.PID, ct.Uptime = "stopped", 0, 0
			if cmd == "reboot" {
				n.NextPID++
				ct.Status, ct.PID, ct.Uptime = "running", n.NextPID, time.Now().Unix()
			}
			return nil
		},
	}, c.out)
}

func (c *pct) destroy(id int, force bool) error {
	return c.st.run(work{typ: "vzdestroy", vmid: id, lock: "destroyed",
		begin: func(n *Node) error {
			ct, err := n.ct(id)
			if err != nil {
				return err
			}
			if ct.Status == "running" && !force {
				return fail("unable to destroy CT %d - container is running", id)
			}
			if ct.Config["protection"] == "1" {
				return fail("can't remove CT %d - protection mode enabled", id)
			}
			return locked(ct)
		},
		body: func(n *Node, t *task) error {
			t.log("  Logical volume \"vm-%d-disk-0\" successfully removed.", id)
			delete(n.CTs, id)
			return nil
		},
	}, c.out)
}

// unlock is pct unlock: it removes any lock, synchronously.
func (c *pct) unlock(id int) error {
	return c.st.Update(func(n *Node) error {
		ct, err := n.ct(id)
		if err != nil {
			return err
		}
		if ct.Lock == "" {
			return fail("no lock found trying to remove any lock")
		}
		ct.Lock = ""
		return nil
	})
}

// settable are the config keys pct set may change here.
var settable = []string{"hostname", "memory", "swap", "cores", "net0", "features", "onboot", "tags",
	"nameserver", "searchdomain", "protection", "description"}

// set changes configuration keys synchronously (no task), as pct set does.
func (c *pct) set(id int, sp spec, p parsed) error {
	o := p.opts
	changes := 0
	for k := range o {
		if k != "digest" {
			changes++
		}
	}
	if changes == 0 {
		return fail("no options specified")
	}
	pe := paramErrors{}
	if h, ok := o["hostname"]; ok && (len(h) > 255 || !dnsNameRE.MatchString(h)) {
		pe["hostname"] = "invalid format - value does not look like a valid DNS name"
	}
	intOpt(pe, o, "memory", 16, 1<<31, 0)
	intOpt(pe, o, "swap", 0, 1<<31, 0)
	intOpt(pe, o, "cores", 1, 8192, 0)
	if err := pe.err(sp.usage); err != nil {
		return err
	}
	return c.onCT(id, func(n *Node, ct *CT) error {
		for _, k := range settable {
			if v, ok := o[k]; ok {
				if k == "net0" {
					v = netConfig(v, id)
				}
				ct.Config[k] = v
			}
		}
		if d, ok := o["delete"]; ok {
			for _, k := range strings.Split(d, ",") {
				delete(ct.Config, strings.TrimSpace(k))
			}
		}
		return nil
	})
}
