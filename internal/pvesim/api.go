package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// API serves the Proxmox REST subset Proximity's adapter reads, under
// /api2/json, on the same state as the command line. Shapes follow the
// official schema: the {"data": ...} envelope, a 500 whose status line is
// the error's first line and whose body carries "message", 400 with
// "errors" per parameter, 401 "No ticket", and 501 for paths outside the
// subset.
type API struct {
	st *Store
	// Token, when set, is the only accepted "USER@REALM!ID=SECRET"; when
	// empty any well-formed PVEAPIToken header is accepted.
	Token   string
	mux     *http.ServeMux
	started time.Time // the node's boot, for its uptime
}

// NewAPI returns the API handler for st.
func NewAPI(st *Store, token string) *API {
	a := &API{st: st, Token: token, mux: http.NewServeMux(), started: time.Now()}
	const p = "/api2/json"
	routes := map[string]func(w http.ResponseWriter, r *http.Request) (any, error){
		"GET " + p + "/version":                                            a.version,
		"GET " + p + "/cluster/nextid":                                     a.nextID,
		"GET " + p + "/cluster/resources":                                  a.resources,
		"GET " + p + "/nodes/{node}/status":                                a.nodeStatus,
		"GET " + p + "/nodes/{node}/lxc":                                   a.lxcList,
		"GET " + p + "/nodes/{node}/lxc/{vmid}/status/current":             a.lxcStatus,
		"GET " + p + "/nodes/{node}/lxc/{vmid}/config":                     a.lxcConfig,
		"GET " + p + "/nodes/{node}/lxc/{vmid}/snapshot":                   a.lxcSnapshots,
		"GET " + p + "/nodes/{node}/lxc/{vmid}/interfaces":                 a.lxcInterfaces,
		"GET " + p + "/nodes/{node}/tasks":                                 a.tasks,
		"GET " + p + "/nodes/{node}/tasks/{upid}/status":                   a.taskStatus,
		"GET " + p + "/nodes/{node}/tasks/{upid}/log":                      a.taskLog,
		"GET " + p + "/nodes/{node}/storage":                               a.storages,
		"GET " + p + "/nodes/{node}/storage/{storage}/content":             a.content,
		"DELETE " + p + "/nodes/{node}/storage/{storage}/content/{volume}": a.deleteContent,
		"GET " + p + "/nodes/{node}/aplinfo":                               a.aplinfo,
	}
	for pattern, h := range routes {
		a.mux.HandleFunc(pattern, a.wrap(h))
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, 501, fmt.Sprintf("Method '%s %s' not implemented", r.Method, strings.TrimPrefix(r.URL.Path, p)), nil)
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// apiError is an error with its HTTP status; errs are per-parameter texts
// for 400.
type apiError struct {
	status int
	msg    string
	errs   map[string]string
}

func (e *apiError) Error() string { return e.msg }

func paramErr(key, msg string) error {
	return &apiError{status: 400, msg: "Parameter verification failed.", errs: map[string]string{key: msg}}
}

var tokenRE = regexp.MustCompile(`^PVEAPIToken=([^@\s]+@[^!\s]+![A-Za-z][A-Za-z0-9._-]*)=(\S+)$`)

func (a *API) wrap(h func(w http.ResponseWriter, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := tokenRE.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil || (a.Token != "" && m[1]+"="+m[2] != a.Token) {
			writeStatus(w, 401, "No ticket", nil)
			return
		}
		var f Faults
		if err := a.st.View(func(n *Node) error { f = n.Faults; return nil }); err != nil {
			writeStatus(w, 500, err.Error(), nil)
			return
		}
		f.sleep()
		if n := r.PathValue("node"); n != "" && n != a.st.Node && n != "localhost" {
			writeStatus(w, 500, fmt.Sprintf("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", n, n), nil)
			return
		}
		data, err := h(w, r)
		if err != nil {
			var e *apiError
			if !errors.As(err, &e) {
				e = &apiError{status: 500, msg: err.Error()} // a Proxmox exception
			}
			writeStatus(w, e.status, e.msg, e.errs)
			return
		}
		if f.StringVMID {
			data = stringVMIDs(data)
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
}

// writeStatus answers an error the way pve-http-server does: the status
// line carries the message's first line (so clients that only read the
// status line, as go-proxmox does for 500, still see it), and the body is
// {"data":null,"message":"...\n"} (plus "errors" for 400). Go's server
// always writes the standard reason phrase, so the response is written on
// the hijacked connection.
func writeStatus(w http.ResponseWriter, status int, msg string, errs map[string]string) {
	line, _, _ := strings.Cut(msg, "\n")
	body := map[string]any{"data": nil, "message": msg + "\n"}
	if errs != nil {
		body["errors"] = errs
	}
	b, _ := json.Marshal(body)
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, line, len(b))
	_, _ = buf.Write(b)
	_ = buf.Flush()
}

func (a *API) version(w http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]any{"version": "9.1.3", "release": "9.1", "repoid": "5e8b0d0d", "console": "xtermjs"}, nil
}

func (a *API) nextID(w http.ResponseWriter, r *http.Request) (any, error) {
	var out any
	err := a.st.View(func(n *Node) error {
		if q := r.URL.Query().Get("vmid"); q != "" {
			pe := paramErrors{}
			id := vmid(pe, q)
			if len(pe) > 0 {
				return paramErr("vmid", pe["vmid"])
			}
			if n.vmidFree(id) != nil {
				return paramErr("vmid", fmt.Sprintf("VM %d already exists", id))
			}
			out = strconv.Itoa(id)
			return nil
		}
		for id := 100; id < 1_000_000; id++ {
			if n.vmidFree(id) == nil {
				out = strconv.Itoa(id)
				return nil
			}
		}
		return fail("unable to get any free VMID in range [100, 1000000]")
	})
	return out, err
}

// vmstatus is PVE::LXC::vmstatus for one container.
func vmstatus(n *Node, ct *CT) map[string]any {
	maxmem := int64(atoi(ct.Config["memory"], 512)) << 20
	maxswap := int64(atoi(ct.Config["swap"], 512)) << 20
	maxdisk := int64(4) << 30
	if _, size, ok := strings.Cut(ct.Config["rootfs"], ",size="); ok {
		maxdisk = int64(atoi(strings.TrimSuffix(size, "G"), 4)) << 30
	}
	name := ct.Config["hostname"]
	if name == "" {
		name = "CT" + strconv.Itoa(ct.VMID)
	}
	s := map[string]any{
		"vmid": ct.VMID, "status": ct.Status, "name": name, "type": "lxc",
		"cpus": atoi(ct.Config["cores"], 4), "cpu": 0, "mem": 0, "maxmem": maxmem, "swap": 0, "maxswap": maxswap,
		"disk": 0, "maxdisk": maxdisk, "uptime": 0, "netin": ct.NetIn, "netout": ct.NetOut, "diskread": 0, "diskwrite": 0,
	}
	if ct.Status == "running" {
		up := time.Now().Unix() - ct.Uptime
		s["uptime"], s["pid"] = up, ct.PID
		s["cpu"], s["mem"], s["disk"] = 0.0125, maxmem/4, maxdisk/3
		s["netin"], s["netout"] = ct.NetIn+up*1024, ct.NetOut+up*512
		s["diskread"], s["diskwrite"] = up*4096, up*2048
		for _, k := range []string{"pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull", "pressurememorysome", "pressurememoryfull"} {
			s[k] = 0
		}
	}
	if ct.Config["tags"] != "" {
		s["tags"] = ct.Config["tags"]
	}
	if ct.Config["template"] == "1" {
		s["template"] = 1
	}
	if ct.Lock != "" {
		s["lock"] = ct.Lock
	}
	return s
}

func atoi(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func (a *API) lxcList(w http.ResponseWriter, r *http.Request) (any, error) {
	out := []any{}
	err := a.st.View(func(n *Node) error {
		for _, id := range n.VMIDs() {
			out = append(out, vmstatus(n, n.CTs[id]))
		}
		return nil
	})
	return out, err
}

// onCT reads container {vmid} of the request.
func (a *API) onCT(r *http.Request, fn func(n *Node, ct *CT) (any, error)) (any, error) {
	pe := paramErrors{}
	id := vmid(pe, r.PathValue("vmid"))
	if len(pe) > 0 {
		return nil, paramErr("vmid", pe["vmid"])
	}
	var out any
	err := a.st.View(func(n *Node) error {
		ct, err := n.ct(id)
		if err != nil {
			return err
		}
		out, err = fn(n, ct)
		return err
	})
	return out, err
}

func (a *API) lxcStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.onCT(r, func(n *Node, ct *CT) (any, error) {
		s := vmstatus(n, ct)
		s["ha"] = map[string]any{"managed": 0}
		return s, nil
	})
}

func (a *API) lxcConfig(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.onCT(r, func(n *Node, ct *CT) (any, error) {
		cfg := ct.Config
		if name := r.URL.Query().Get("snapshot"); name != "" {
			s := ct.Snapshots[name]
			if s == nil {
				return nil, fail("snapshot '%s' does not exist", name)
			}
			cfg = s.Config
		}
		out := map[string]any{}
		keys := make([]string, 0, len(cfg))
		for k, v := range cfg {
			keys = append(keys, k+"="+v)
			if i, err := strconv.Atoi(v); err == nil && slices.Contains([]string{"memory", "swap", "cores", "onboot", "unprivileged", "protection", "template"}, k) {
				out[k] = i
			} else {
				out[k] = v
			}
		}
		if ct.Lock != "" {
			out["lock"] = ct.Lock
		}
		sort.Strings(keys)
		sum := sha1.Sum([]byte(strings.Join(keys, "\n")))
		out["digest"] = hex.EncodeToString(sum[:])
		return out, nil
	})
}

func (a *API) lxcSnapshots(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.onCT(r, func(n *Node, ct *CT) (any, error) {
		names := make([]string, 0, len(ct.Snapshots))
		for name := range ct.Snapshots {
			names = append(names, name)
		}
		sort.Strings(names)
		out := []any{}
		for _, name := range names {
			s := ct.Snapshots[name]
			e := map[string]any{"name": name, "description": s.Description, "snaptime": s.Time}
			if s.Parent != "" {
				e["parent"] = s.Parent
			}
			out = append(out, e)
		}
		running := 0
		if ct.Status == "running" {
			running = 1
		}
		cur := map[string]any{"name": "current", "description": "You are here!", "running": running}
		if ct.Parent != "" {
			cur["parent"] = ct.Parent
		}
		return append(out, cur), nil
	})
}

func (a *API) lxcInterfaces(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.onCT(r, func(n *Node, ct *CT) (any, error) {
		if ct.Status != "running" {
			return nil, fail("CT %d not running", ct.VMID)
		}
		out := []any{map[string]any{"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"}}
		if ip := ct.IPv4(); ip != "" {
			hw := ""
			for _, kv := range strings.Split(ct.Config["net0"], ",") {
				if v, ok := strings.CutPrefix(kv, "hwaddr="); ok {
					hw = v
				}
			}
			out = append(out, map[string]any{"name": "eth0", "hwaddr": hw, "inet": ip})
		}
		return out, nil
	})
}

func (a *API) nodeStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	var out any
	err := a.st.View(func(n *Node) error {
		used := int64(0)
		disk := int64(0)
		for _, ct := range n.CTs {
			s := vmstatus(n, ct)
			if ct.Status == "running" {
				used += s["maxmem"].(int64)
			}
			disk += s["maxdisk"].(int64)
		}
		total := int64(n.MemoryMB) << 20
		dtotal := int64(n.DiskGB) << 30
		out = map[string]any{
			"cpu": 0.05, "cpuinfo": map[string]any{"cpus": 16, "cores": 8, "sockets": 1, "model": "Simulated CPU"},
			"memory":     map[string]any{"total": total, "used": used, "free": max(total-used, 0)},
			"rootfs":     map[string]any{"total": dtotal, "used": disk, "free": max(dtotal-disk, 0), "avail": max(dtotal-disk, 0)},
			"loadavg":    []string{"0.10", "0.05", "0.01"},
			"pveversion": "pve-manager/9.1.3/5e8b0d0d",
			// Every field the API schema marks required, as a node answers.
			"boot-info": map[string]any{"mode": "efi", "secureboot": 0},
			"current-kernel": map[string]any{"machine": "x86_64", "release": "6.17.2-1-pve", "sysname": "Linux",
				"version": "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-10-21T11:55Z)"},
			"kversion": "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-10-21T11:55Z)",
			"ksm":      map[string]any{"shared": 0},
			"swap":     map[string]any{"total": 8 << 30, "used": 0, "free": 8 << 30},
			"uptime":   int64(time.Since(a.started).Seconds()), "idle": 0, "wait": 0.001,
		}
		return nil
	})
	return out, err
}

func (a *API) resources(w http.ResponseWriter, r *http.Request) (any, error) {
	typ := r.URL.Query().Get("type")
	if typ != "" && !slices.Contains([]string{"vm", "storage", "node", "sdn"}, typ) {
		return nil, paramErr("type", "value '"+typ+"' does not have a value in the enumeration 'vm, storage, node, sdn'")
	}
	out := []any{}
	err := a.st.View(func(n *Node) error {
		if typ == "" || typ == "vm" {
			for _, id := range n.VMIDs() {
				s := vmstatus(n, n.CTs[id])
				s["id"], s["node"], s["maxcpu"] = "lxc/"+strconv.Itoa(id), n.Name, s["cpus"]
				delete(s, "cpus")
				out = append(out, s)
			}
			vms := slices.Clone(n.VMs)
			sort.Ints(vms)
			for _, id := range vms {
				out = append(out, map[string]any{"id": "qemu/" + strconv.Itoa(id), "type": "qemu", "vmid": id, "node": n.Name,
					"name": "VM" + strconv.Itoa(id), "status": "running", "template": 0, "maxcpu": 2, "maxmem": 2 << 30})
			}
		}
		if typ == "" || typ == "node" {
			out = append(out, map[string]any{"id": "node/" + n.Name, "type": "node", "node": n.Name, "status": "online",
				"maxcpu": 16, "maxmem": int64(n.MemoryMB) << 20, "maxdisk": int64(n.DiskGB) << 30, "level": ""})
		}
		if typ == "" || typ == "storage" {
			for _, s := range n.Storages {
				out = append(out, map[string]any{"id": "storage/" + n.Name + "/" + s.ID, "type": "storage", "storage": s.ID,
					"node": n.Name, "status": "available", "plugintype": s.Type, "content": strings.Join(s.Content, ","), "shared": boolInt(s.Shared)})
			}
		}
		return nil
	})
	return out, err
}

func taskJSON(n *Node, t Task) map[string]any {
	m := upidRE.FindStringSubmatch(t.UPID)
	pid, _ := strconv.ParseInt(m[1], 16, 64)
	pstart, _ := strconv.ParseInt(m[2], 16, 64)
	out := map[string]any{"upid": t.UPID, "node": n.Name, "pid": pid, "pstart": pstart, "starttime": t.Start,
		"type": t.Type, "id": t.ID, "user": t.User, "status": t.Status}
	if t.Status == "stopped" {
		out["exitstatus"] = t.Exit
	}
	return out
}

var upidRE = regexp.MustCompile(`^UPID:[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?:([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

// task finds {upid} of the request.
func (a *API) task(r *http.Request, fn func(n *Node, t Task) (any, error)) (any, error) {
	upid := r.PathValue("upid")
	if !upidRE.MatchString(upid) {
		return nil, paramErr("upid", "unable to parse worker upid '"+upid+"'")
	}
	var out any
	err := a.st.View(func(n *Node) error {
		t := n.task(upid)
		if t == nil {
			return paramErr("upid", "no such task")
		}
		var err error
		out, err = fn(n, *t)
		return err
	})
	return out, err
}

func (a *API) taskStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.task(r, func(n *Node, t Task) (any, error) {
		out := taskJSON(n, t)
		out["status"] = t.Status
		return out, nil
	})
}

func (a *API) taskLog(w http.ResponseWriter, r *http.Request) (any, error) {
	start := atoi(r.URL.Query().Get("start"), 0)
	limit := atoi(r.URL.Query().Get("limit"), 50)
	return a.task(r, func(n *Node, t Task) (any, error) {
		b, err := os.ReadFile(filepath.Join(a.st.Dir, "tasks", t.UPID))
		if err != nil {
			return []any{map[string]any{"n": 1, "t": "unable to open file - No such file or directory"}}, nil
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		out := []any{}
		for i := start; i < len(lines) && (limit <= 0 || len(out) < limit); i++ {
			out = append(out, map[string]any{"n": i + 1, "t": lines[i]})
		}
		return out, nil
	})
}

func (a *API) tasks(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit := atoi(q.Get("limit"), 50)
	source := q.Get("source")
	out := []any{}
	err := a.st.View(func(n *Node) error {
		for i := len(n.Tasks) - 1; i >= 0 && len(out) < limit; i-- {
			t := n.Tasks[i]
			switch {
			case q.Get("vmid") != "" && t.ID != q.Get("vmid"):
			case q.Get("typefilter") != "" && t.Type != q.Get("typefilter"):
			case source == "active" && t.Status != "running":
			case (source == "" || source == "archive") && t.Status == "running":
			default:
				e := taskJSON(n, t)
				if t.Status == "stopped" {
					e["status"], e["endtime"] = t.Exit, t.End
				}
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

func (a *API) storages(w http.ResponseWriter, r *http.Request) (any, error) {
	out := []any{}
	err := a.st.View(func(n *Node) error {
		for _, s := range n.Storages {
			// Each storage is as large as the node's disk; the root disks
			// of the containers on it are what it uses.
			total, used := int64(n.DiskGB)<<30, int64(0)
			for _, ct := range n.CTs {
				if strings.HasPrefix(ct.Config["rootfs"], s.ID+":") {
					used += vmstatus(n, ct)["maxdisk"].(int64)
				}
			}
			out = append(out, map[string]any{"storage": s.ID, "type": s.Type, "content": strings.Join(s.Content, ","),
				"active": 1, "enabled": 1, "shared": boolInt(s.Shared), "total": total, "used": used, "avail": max(total-used, 0)})
		}
		return nil
	})
	return out, err
}

func (a *API) content(w http.ResponseWriter, r *http.Request) (any, error) {
	storage, kind := r.PathValue("storage"), r.URL.Query().Get("content")
	out := []any{}
	err := a.st.View(func(n *Node) error {
		s, ok := n.Storage(storage)
		if !ok {
			return fail("storage '%s' does not exist", storage)
		}
		if (kind == "" || kind == "vztmpl") && s.Supports("vztmpl") {
			for _, t := range n.Templates[storage] {
				out = append(out, map[string]any{"volid": storage + ":vztmpl/" + t, "content": "vztmpl", "format": "tzst", "size": templateSize})
			}
		}
		if (kind == "" || kind == "backup") && s.Supports("backup") {
			var list []Backup
			if err := n.withArchives(storage, false, func(l *[]Backup) error { list = *l; return nil }); err != nil {
				return err
			}
			for _, b := range list {
				if strings.HasPrefix(b.Volid, storage+":") && (q(r, "vmid") == "" || q(r, "vmid") == strconv.Itoa(b.VMID)) {
					e := map[string]any{"volid": b.Volid, "content": "backup", "format": "tar.zst", "size": b.Size, "ctime": b.Ctime, "vmid": b.VMID}
					if b.Notes != "" {
						e["notes"] = b.Notes
					}
					if b.Protected {
						e["protected"] = 1
					}
					out = append(out, e)
				}
			}
		}
		return nil
	})
	return out, err
}

func q(r *http.Request, k string) string { return r.URL.Query().Get(k) }

// deleteContent removes a backup archive (an "imgdel" task).
func (a *API) deleteContent(w http.ResponseWriter, r *http.Request) (any, error) {
	storage, volume := r.PathValue("storage"), r.PathValue("volume")
	volid := volume
	if !strings.Contains(volume, ":") {
		volid = storage + ":" + volume
	}
	var upid string
	err := a.st.run(work{typ: "imgdel",
		begin: func(n *Node) error {
			b := n.backup(volid)
			if b == nil {
				return fail("volume '%s' does not exist", volid)
			}
			if b.Protected {
				return fail("volume '%s' is protected", volid)
			}
			return nil
		},
		body: func(n *Node, t *task) error {
			upid = t.upid
			if err := n.withArchives(storageOf(volid), true, func(l *[]Backup) error {
				*l = slices.DeleteFunc(*l, func(b Backup) bool { return b.Volid == volid })
				return nil
			}); err != nil {
				return err
			}
			t.log("Removed volume '%s'", volid)
			return nil
		},
	}, nil)
	return upid, err
}

func (a *API) aplinfo(w http.ResponseWriter, r *http.Request) (any, error) {
	out := []any{}
	err := a.st.View(func(n *Node) error {
		for _, t := range n.Available {
			out = append(out, map[string]any{"template": t, "section": "system", "type": "lxc", "os": osType(t),
				"package": strings.SplitN(t, "_", 2)[0], "architecture": "amd64", "headline": t})
		}
		return nil
	})
	return out, err
}

// stringVMIDs rewrites every "vmid" as a string, as PVE before 7 did.
func stringVMIDs(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = stringVMIDs(x[i])
		}
	case map[string]any:
		if id, ok := x["vmid"].(int); ok {
			x["vmid"] = strconv.Itoa(id)
		}
	}
	return v
}
