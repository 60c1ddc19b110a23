package pve

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// vmstatus is the API's container status, decoded tolerantly: vmid may be
// a number or a string, and counters may be missing or null.
type vmstatus struct {
	VMID     num    `json:"vmid"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Lock     string `json:"lock"`
	Tags     string `json:"tags"`
	Template num    `json:"template"`
	CPUs     num    `json:"cpus"`
	MaxCPU   num    `json:"maxcpu"`
	CPU      num    `json:"cpu"`
	Mem      num    `json:"mem"`
	MaxMem   num    `json:"maxmem"`
	Disk     num    `json:"disk"`
	MaxDisk  num    `json:"maxdisk"`
	NetIn    num    `json:"netin"`
	NetOut   num    `json:"netout"`
	Uptime   num    `json:"uptime"`
	Type     string `json:"type"`
	Node     string `json:"node"`
}

func (v vmstatus) container() Container {
	cpus := float64(v.CPUs)
	if cpus == 0 {
		cpus = float64(v.MaxCPU)
	}
	return Container{
		VMID: v.VMID.int(), Name: v.Name, Status: v.Status, Lock: v.Lock, Tags: v.Tags, Template: v.Template == 1,
		CPUs: cpus, CPU: float64(v.CPU), Mem: v.Mem.u64(), MaxMem: v.MaxMem.u64(), Disk: v.Disk.u64(),
		MaxDisk: v.MaxDisk.u64(), NetIn: v.NetIn.u64(), NetOut: v.NetOut.u64(), Uptime: v.Uptime.u64(),
	}
}

func (l *Local) nodePath(format string, args ...any) string {
	return "/nodes/" + url.PathEscape(l.opt.Node) + fmt.Sprintf(format, args...)
}

func (l *Local) Containers(ctx context.Context) ([]Container, error) {
	var list []vmstatus
	if err := l.get(ctx, l.nodePath("/lxc"), &list); err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(list))
	for _, v := range list {
		out = append(out, v.container())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out, nil
}

func (l *Local) UsedVMIDs(ctx context.Context) ([]int, error) {
	var list []vmstatus
	if err := l.get(ctx, "/cluster/resources?type=vm", &list); err != nil {
		return nil, err
	}
	out := make([]int, 0, len(list))
	for _, v := range list {
		if id := v.VMID.int(); id > 0 {
			out = append(out, id)
		}
	}
	sort.Ints(out)
	return out, nil
}

func (l *Local) Status(ctx context.Context, vmid int) (Container, error) {
	var v vmstatus
	if err := l.get(ctx, l.nodePath("/lxc/%d/status/current", vmid), &v); err != nil {
		return Container{}, err
	}
	c := v.container()
	if c.VMID == 0 {
		c.VMID = vmid
	}
	return c, nil
}

func (l *Local) Node(ctx context.Context) (NodeStatus, error) {
	var v struct {
		Memory  struct{ Total, Free num }  `json:"memory"`
		RootFS  struct{ Total, Avail num } `json:"rootfs"`
		CPUInfo struct{ CPUs num }         `json:"cpuinfo"`
		Version string                     `json:"pveversion"`
	}
	if err := l.get(ctx, l.nodePath("/status"), &v); err != nil {
		return NodeStatus{}, err
	}
	return NodeStatus{MemTotal: v.Memory.Total.u64(), MemFree: v.Memory.Free.u64(), DiskTotal: v.RootFS.Total.u64(),
		DiskFree: v.RootFS.Avail.u64(), CPUs: v.CPUInfo.CPUs.int(), Version: v.Version}, nil
}

// Storages reads GET /nodes/{node}/storage and keeps the storages that
// are enabled and active (a missing flag counts as set: older versions
// leave them out).
func (l *Local) Storages(ctx context.Context) ([]Storage, error) {
	var list []struct {
		Storage string `json:"storage"`
		Type    string `json:"type"`
		Content string `json:"content"`
		Total   num    `json:"total"`
		Avail   num    `json:"avail"`
		Active  *num   `json:"active"`
		Enabled *num   `json:"enabled"`
		Shared  num    `json:"shared"`
	}
	if err := l.get(ctx, l.nodePath("/storage"), &list); err != nil {
		return nil, err
	}
	out := make([]Storage, 0, len(list))
	for _, s := range list {
		if s.Storage == "" || (s.Active != nil && *s.Active == 0) || (s.Enabled != nil && *s.Enabled == 0) {
			continue
		}
		st := Storage{Name: s.Storage, Type: s.Type, Content: []string{}, Total: s.Total.u64(), Available: s.Avail.u64(), Shared: s.Shared == 1}
		for _, c := range strings.Split(s.Content, ",") {
			if c = strings.TrimSpace(c); c != "" {
				st.Content = append(st.Content, c)
			}
		}
		sort.Strings(st.Content)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (l *Local) Snapshots(ctx context.Context, vmid int) ([]SnapshotInfo, error) {
	var list []struct {
		Name, Parent, Description string
		Snaptime                  num
	}
	if err := l.get(ctx, l.nodePath("/lxc/%d/snapshot", vmid), &list); err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	for _, s := range list {
		if s.Name != "current" {
			out = append(out, SnapshotInfo{Name: s.Name, Parent: s.Parent, Description: s.Description, Time: int64(s.Snaptime)})
		}
	}
	return out, nil
}

func (l *Local) Config(ctx context.Context, vmid int) (map[string]string, error) {
	var raw map[string]str
	if err := l.get(ctx, l.nodePath("/lxc/%d/config", vmid), &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if k != "digest" && k != "lxc" {
			out[k] = string(v)
		}
	}
	return out, nil
}

func (l *Local) Backups(ctx context.Context, storage string, vmid int) ([]BackupFile, error) {
	path := l.nodePath("/storage/%s/content?content=backup", url.PathEscape(storage))
	if vmid > 0 {
		path += "&vmid=" + strconv.Itoa(vmid)
	}
	var list []struct {
		Volid     string `json:"volid"`
		VMID      num    `json:"vmid"`
		Size      num    `json:"size"`
		Ctime     num    `json:"ctime"`
		Notes     string `json:"notes"`
		Protected num    `json:"protected"`
	}
	if err := l.get(ctx, path, &list); err != nil {
		return nil, err
	}
	out := make([]BackupFile, 0, len(list))
	for _, b := range list {
		out = append(out, BackupFile{Volid: b.Volid, VMID: b.VMID.int(), Size: b.Size.u64(), Ctime: int64(b.Ctime), Notes: b.Notes, Protected: b.Protected == 1})
	}
	return out, nil
}

// DeleteBackup removes an archive; the API answers with a task, which is
// waited for.
func (l *Local) DeleteBackup(ctx context.Context, volid string) error {
	storage, _, ok := strings.Cut(volid, ":")
	if !ok {
		return &Error{Kind: ErrInvalid, Text: "not a volume ID: " + volid}
	}
	ctx, cancel := l.deadline(ctx, l.opt.TaskTimeout)
	defer cancel()
	var upid string
	if err := l.apiErr(ctx, l.api.Delete(ctx, l.nodePath("/storage/%s/content/%s", url.PathEscape(storage), url.PathEscape(volid)), &upid)); err != nil {
		return err
	}
	if upid == "" {
		return nil
	}
	return l.WaitTask(ctx, upid)
}

func (l *Local) ActiveTasks(ctx context.Context, vmid int) ([]TaskInfo, error) {
	var list []struct {
		UPID, Type, ID, Status string
	}
	if err := l.get(ctx, l.nodePath("/tasks?source=active&vmid=%d", vmid), &list); err != nil {
		return nil, err
	}
	var out []TaskInfo
	for _, t := range list {
		out = append(out, TaskInfo{UPID: t.UPID, Type: t.Type, ID: t.ID, Status: "running"})
	}
	return out, nil
}

// WaitTask polls a task's status until it stops. Unlike go-proxmox's
// Task.Wait it reports a failed task as an error, and it counts
// "WARNINGS: n" as success, as pct does.
func (l *Local) WaitTask(ctx context.Context, upid string) error {
	ctx, cancel := l.deadline(ctx, l.opt.TaskTimeout)
	defer cancel()
	interval := 100 * time.Millisecond
	for {
		t := proxmox.NewTask(proxmox.UPID(upid), l.api)
		pctx, pcancel := context.WithTimeout(ctx, l.opt.APITimeout)
		err := l.apiErr(pctx, t.Ping(pctx))
		pcancel()
		if err != nil {
			return err
		}
		if t.Status == "stopped" {
			if t.ExitStatus == "OK" || strings.HasPrefix(t.ExitStatus, "WARNINGS:") {
				return nil
			}
			return Classify(t.ExitStatus)
		}
		select {
		case <-ctx.Done():
			return &Error{Kind: ErrTimeout, Text: "task " + upid + " still running at the deadline"}
		case <-time.After(interval):
		}
		interval = min(interval*2, 2*time.Second)
	}
}
