package pvesim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults are the switchable failures of a simulated node. They live in
// the state, so every process on the node (pct, the API server) sees them.
type Faults struct {
	// LatencyMS is added to every task and every API request.
	LatencyMS int `json:"latency_ms,omitempty"`
	// TaskMS is how long every task runs (with its locks held).
	TaskMS int `json:"task_ms,omitempty"`
	// FailRate is the fraction of tasks that fail with a transient error
	// (a config lock timeout). Draws come from a seeded sequence, so a run
	// is reproducible.
	FailRate float64 `json:"fail_rate,omitempty"`
	// Fail lists task types that always fail with the transient error.
	Fail []string `json:"fail,omitempty"`
	// FailNext makes the next N tasks fail with the transient error.
	FailNext int `json:"fail_next,omitempty"`
	// Hang lists task types (vzcreate, vzstart, vzdump, ...) whose worker
	// never finishes; the caller's deadline must end it.
	Hang []string `json:"hang,omitempty"`
	// Crash lists task types whose worker dies after taking its locks,
	// leaving the lock behind and the task "unexpected status".
	Crash []string `json:"crash,omitempty"`
	// StringVMID makes the API answer "vmid":"100" as older PVE did.
	StringVMID bool `json:"string_vmid,omitempty"`
	// Seq is the position in the failure-draw sequence.
	Seq uint64 `json:"seq,omitempty"`
}

func (f Faults) sleep() {
	if f.LatencyMS > 0 {
		time.Sleep(time.Duration(f.LatencyMS) * time.Millisecond)
	}
}

func (f Faults) has(list []string, typ string) bool { return slices.Contains(list, typ) }

// transient draws whether this task fails; it advances the sequence.
func (f *Faults) transient() bool {
	if f.FailNext > 0 {
		f.FailNext--
		return true
	}
	if f.FailRate <= 0 {
		return false
	}
	f.Seq++
	r := rand.New(rand.NewPCG(f.Seq, 0x5eed))
	return r.Float64() < f.FailRate
}

// SetFaults replaces the node's faults (keeping the draw sequence).
func (s *Store) SetFaults(f Faults) error {
	return s.Update(func(n *Node) error {
		f.Seq = n.Faults.Seq
		n.Faults = f
		return nil
	})
}

// ParseFaults reads `pvesim fault` arguments: latency=200ms task-time=2s fail-rate=0.1
// fail-next=2 hang=vzcreate,vzdump crash=vzcreate string-vmid=1, or clear.
func ParseFaults(args []string) (Faults, error) {
	var f Faults
	for _, a := range args {
		if a == "clear" {
			f = Faults{}
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, fmt.Errorf("fault %q: want key=value", a)
		}
		var err error
		switch k {
		case "latency":
			var d time.Duration
			d, err = time.ParseDuration(v)
			f.LatencyMS = int(d / time.Millisecond)
		case "task-time":
			var d time.Duration
			d, err = time.ParseDuration(v)
			f.TaskMS = int(d / time.Millisecond)
		case "fail-rate":
			f.FailRate, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.FailRate < 0 || f.FailRate > 1) {
				err = fmt.Errorf("must be within 0..1")
			}
		case "fail-next":
			f.FailNext, err = strconv.Atoi(v)
		case "fail":
			f.Fail = strings.Split(v, ",")
		case "hang":
			f.Hang = strings.Split(v, ",")
		case "crash":
			f.Crash = strings.Split(v, ",")
		case "string-vmid":
			f.StringVMID = v == "1" || v == "true"
		default:
			return f, fmt.Errorf("unknown fault %q (latency, task-time, fail, fail-rate, fail-next, hang, crash, string-vmid, clear)", k)
		}
		if err != nil {
			return f, fmt.Errorf("fault %s: %v", k, err)
		}
	}
	return f, nil
}

// Take makes a VMID used behind Proximity's back: a container (or, with
// vm, a qemu guest) that nobody asked Proximity for.
func (s *Store) Take(id int, vm bool) error {
	return s.Update(func(n *Node) error {
		if n.CTs[id] != nil || slices.Contains(n.VMs, id) {
			return fmt.Errorf("VMID %d is already in use", id)
		}
		if vm {
			n.VMs = append(n.VMs, id)
			return nil
		}
		n.CTs[id] = &CT{VMID: id, Status: "stopped", Config: map[string]string{
			"arch": "amd64", "hostname": "manual-" + strconv.Itoa(id), "memory": "512", "swap": "512",
			"ostype": "debian", "rootfs": fmt.Sprintf("local-lvm:vm-%d-disk-0,size=4G", id),
		}}
		return nil
	})
}
