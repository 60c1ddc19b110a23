package pvesim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

var vzdumpSpec = spec{args: []string{"vmid"}, usage: "vzdump {<vmid>} [OPTIONS]", opts: map[string]optKind{
	"mode": optString, "compress": optString, "storage": optString, "notes-template": optString,
	"remove": optBool, "protected": optBool, "quiet": optBool, "zstd": optInt, "bwlimit": optInt,
	"ionice": optInt, "lockwait": optInt, "stopwait": optInt,
}}

// backupSize is the simulated size of every archive, in bytes.
const backupSize = 431_980_544

// vzdump runs `vzdump <vmid> [OPTIONS]`: a "vzdump" task that holds the
// container's "backup" lock and writes an archive to a backup storage. Its
// output goes to stderr with the "INFO: " prefix, as vzdump prints it.
func vzdump(st *Store, args []string, stdout, stderr io.Writer) int {
	p, err := vzdumpSpec.parse(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 255
	}
	pe := paramErrors{}
	id := vmid(pe, p.pos[0])
	mode := p.opts["mode"]
	if mode == "" {
		mode = "snapshot"
	}
	if !slices.Contains([]string{"snapshot", "suspend", "stop"}, mode) {
		pe["mode"] = "value '" + mode + "' does not have a value in the enumeration 'snapshot, suspend, stop'"
	}
	ext := ".tar"
	switch p.opts["compress"] {
	case "", "0":
	case "1", "lzo":
		ext += ".lzo"
	case "gzip":
		ext += ".gz"
	case "zstd":
		ext += ".zst"
	default:
		pe["compress"] = "value '" + p.opts["compress"] + "' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'"
	}
	storage := p.opts["storage"]
	if storage == "" {
		storage = "local"
	}
	if err := pe.err(vzdumpSpec.usage); err != nil {
		fmt.Fprintln(stderr, err)
		return 255
	}
	info := func(line string) { fmt.Fprintln(stderr, "INFO: "+line) }
	info("starting new backup job: vzdump " + strings.Join(args, " "))
	var volid string
	err = st.ctWork("vzdump", id, "backup",
		func(n *Node) error {
			s, ok := n.Storage(storage)
			if !ok {
				return fail("storage '%s' does not exist", storage)
			}
			if !s.Supports("backup") {
				return fail("storage '%s' does not support backups", storage)
			}
			return nil
		},
		func(n *Node, ct *CT, t *task) error {
			now := time.Now()
			t.log("Starting Backup of VM %d (lxc)", id)
			t.log("Backup started at %s", now.Format("2006-01-02 15:04:05"))
			t.log("status = %s", ct.Status)
			t.log("CT Name: %s", ct.Config["hostname"])
			t.log("including mount point rootfs ('/') in backup")
			m := mode
			if ct.Status != "running" {
				m = "stop"
			} else if m == "snapshot" && !snapshotCapable(n, ct) {
				t.log("mode failure - some volumes do not support snapshots")
				t.log("trying 'suspend' mode instead")
				m = "suspend"
			}
			t.log("backup mode: %s", m)
			t.log("ionice priority: 7")
			if m == "snapshot" {
				t.log("create storage snapshot 'vzdump'")
			}
			// Two backups in one second would share a name; the later
			// one moves to the next free second.
			for {
				volid = fmt.Sprintf("%s:backup/vzdump-lxc-%d-%s%s", storage, id, now.Format("2006_01_02-15_04_05"), ext)
				if n.backup(volid) == nil {
					break
				}
				now = now.Add(time.Second)
			}
			path := "/var/lib/vz/dump/" + strings.TrimPrefix(volid, storage+":backup/")
			t.log("creating vzdump archive '%s'", path)
			t.log("Total bytes written: %d (412MiB, 206MiB/s)", backupSize)
			t.log("archive file size: 412MB")
			b := Backup{Volid: volid, VMID: id, Size: backupSize, Ctime: now.Unix(), Protected: p.opts["protected"] == "1",
				Config: copyConfig(ct.Config), Files: copyConfig(ct.Files)}
			if nt := p.opts["notes-template"]; nt != "" {
				t.log("adding notes to backup")
				b.Notes = strings.NewReplacer("{{guestname}}", ct.Config["hostname"], "{{vmid}}", strconv.Itoa(id), "{{node}}", n.Name).Replace(nt)
			}
			if m == "snapshot" {
				t.log("cleanup temporary 'vzdump' snapshot")
			}
			if err := n.withArchives(storage, true, func(list *[]Backup) error { *list = append(*list, b); return nil }); err != nil {
				return err
			}
			t.log("Finished Backup of VM %d (00:00:01)", id)
			t.log("Backup finished at %s", time.Now().Format("2006-01-02 15:04:05"))
			return nil
		}, info)
	if err != nil {
		fmt.Fprintf(stderr, "ERROR: Backup of VM %d failed - %s\n", id, err)
		info("Backup job finished with errors")
		fmt.Fprintln(stderr, "job errors")
		return 255
	}
	info("Backup job finished successfully")
	return 0
}

// restore is pct restore: create_vm with restore=1, a "vzrestore" task.
func (c *pct) restore(id int, archive string, o map[string]string) error {
	storage := o["storage"]
	if storage == "" {
		storage = "local-lvm"
	}
	return c.st.run(work{typ: "vzrestore", vmid: id, lock: "create",
		begin: func(n *Node) error {
			b := n.backup(archive)
			if b == nil {
				return fail("volume '%s' does not exist", archive)
			}
			if s, ok := n.Storage(storage); !ok || !s.Supports("rootdir") {
				return paramErrors{"storage": fmt.Sprintf("storage '%s' does not support container directories", storage)}.err("pct restore <vmid> <ostemplate> [OPTIONS]")
			}
			if ct := n.CTs[id]; ct != nil {
				switch {
				case o["force"] != "1":
					return fail("CT %d already exists on node '%s'", id, n.Name)
				case ct.Status == "running":
					return fail("can't overwrite running container")
				}
				if err := locked(ct); err != nil {
					return err
				}
			} else if err := n.vmidFree(id); err != nil {
				return err
			}
			cfg := copyConfig(b.Config)
			size := "4G"
			if _, rest, ok := strings.Cut(cfg["rootfs"], ",size="); ok {
				size = rest
			}
			cfg["rootfs"] = fmt.Sprintf("%s:vm-%d-disk-0,size=%s", storage, id, size)
			for _, k := range []string{"hostname", "unprivileged", "memory", "cores"} {
				if v, ok := o[k]; ok {
					cfg[k] = v
				}
			}
			if net, ok := o["net0"]; ok {
				// Given configuration wins over the backed-up one; a new
				// net0 without hwaddr gets one made for this VMID.
				cfg["net0"] = netConfig(net, id)
			} else if net, ok := cfg["net0"]; ok && o["unique"] == "1" {
				cfg["net0"] = netConfig(strings.Join(slices.DeleteFunc(strings.Split(net, ","), func(kv string) bool {
					return strings.HasPrefix(kv, "hwaddr=")
				}), ","), id)
			}
			n.CTs[id] = &CT{VMID: id, Config: cfg, Status: "stopped", Files: copyConfig(b.Files)}
			return nil
		},
		body: func(n *Node, t *task) error {
			t.log("recovering backed-up configuration from '%s'", archive)
			t.log("  Logical volume \"vm-%d-disk-0\" created.", id)
			t.log("restoring '%s' now..", archive)
			t.log("merging backed-up and given configuration..")
			return nil
		},
		onFail: func(n *Node) { delete(n.CTs, id) },
	}, c.out)
}

// clone is pct clone: a "vzclone" task whose UPID id is the source. The
// source holds lock "disk" and the new container lock "create" meanwhile.
func (c *pct) clone(id, newid int, o map[string]string) error {
	snapname := o["snapname"]
	release := func(n *Node) {
		if src := n.CTs[id]; src != nil && src.Lock == "disk" {
			src.Lock = ""
		}
	}
	return c.st.run(work{typ: "vzclone", vmid: newid, id: strconv.Itoa(id), lock: "create",
		begin: func(n *Node) error {
			src, err := n.ct(id)
			if err != nil {
				return err
			}
			if err := locked(src); err != nil {
				return err
			}
			full := src.Config["template"] != "1"
			if v, ok := o["full"]; ok {
				full = v == "1"
			}
			cfg := src.Config
			if snapname != "" {
				s := src.Snapshots[snapname]
				if s == nil {
					return fail("snapshot '%s' does not exist", snapname)
				}
				cfg = s.Config
			}
			switch {
			case !full && src.Config["template"] != "1":
				return fail("Linked clone feature for '%s' is not available", strings.Split(src.Config["rootfs"], ",")[0])
			case !full && o["storage"] != "":
				return fail("parameter 'storage' not allowed for linked clones")
			case full && src.Status == "running" && snapname == "":
				return fail("Full clone of a running container is only possible from a snapshot")
			}
			if err := n.vmidFree(newid); err != nil {
				return err
			}
			cfg = copyConfig(cfg)
			delete(cfg, "template")
			storage, _, _ := strings.Cut(cfg["rootfs"], ":")
			if s := o["storage"]; s != "" {
				storage = s
			}
			size := "4G"
			if _, rest, ok := strings.Cut(cfg["rootfs"], ",size="); ok {
				size = rest
			}
			cfg["rootfs"] = fmt.Sprintf("%s:vm-%d-disk-0,size=%s", storage, newid, size)
			if h, ok := o["hostname"]; ok {
				cfg["hostname"] = h
			}
			if d, ok := o["description"]; ok {
				cfg["description"] = d
			}
			if net, ok := cfg["net0"]; ok {
				cfg["net0"] = netConfig(strings.Join(slices.DeleteFunc(strings.Split(net, ","), func(kv string) bool {
					return strings.HasPrefix(kv, "hwaddr=")
				}), ","), newid)
			}
			src.Lock = "disk"
			n.CTs[newid] = &CT{VMID: newid, Config: cfg, Status: "stopped", Files: copyConfig(src.Files)}
			return nil
		},
		body: func(n *Node, t *task) error {
			release(n)
			t.log("create full clone of mountpoint rootfs (%s)", strings.Split(n.CTs[newid].Config["rootfs"], ",")[0])
			t.log("  Logical volume \"vm-%d-disk-0\" created.", newid)
			t.log("Number of files: 0 (reg: 0, dir: 0)")
			return nil
		},
		onFail: func(n *Node) { release(n); delete(n.CTs, newid) },
	}, c.out)
}
