package pve

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var kinds = []error{ErrExists, ErrNotFound, ErrLocked, ErrNotRunning, ErrAlreadyRunning, ErrRunning, ErrTimeout,
	ErrProtected, ErrUnsupported, ErrInvalid}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	lockRE   = regexp.MustCompile(`^[a-z-]+$`)
)

// FuzzClassify: Classify answers nil exactly for blank text, else an
// *Error holding the trimmed text whose kind is one of the sentinels (or
// none) and matches it with errors.Is; a VMID it names is digits, a lock
// is a lock name.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", " \n", "CT 100 already exists on node 'pve'", "CT is locked (backup)",
		"can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout", "CT 100 not running",
		"unable to destroy CT 100 - container is running", "400 Parameter verification failed.\nstorage: x",
		"snapshot 'a' does not exist", "something new"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		err := Classify(text)
		if strings.TrimSpace(text) == "" {
			if err != nil {
				t.Fatalf("Classify(%q) = %v, want nil", text, err)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Text != strings.TrimSpace(text) {
			t.Fatalf("Classify(%q) = %#v", text, err)
		}
		known := e.Kind == nil
		for _, k := range kinds {
			known = known || e.Kind == k
		}
		if !known || e.Kind != nil && !errors.Is(err, e.Kind) {
			t.Fatalf("Classify(%q): kind %v", text, e.Kind)
		}
		if e.VMID != "" && !digitsRE.MatchString(e.VMID) || e.Lock != "" && !lockRE.MatchString(e.Lock) {
			t.Fatalf("Classify(%q): VMID %q, lock %q", text, e.VMID, e.Lock)
		}
	})
}

// FuzzVzdump reads any vzdump log and exit code: exactly one of a volume
// ID and an error; a failed run is always an error; a volume ID is
// STORAGE:backup/NAME with NAME a file name (no slash, not . or ..).
func FuzzVzdump(f *testing.F) {
	f.Add("local", "INFO: starting new backup job\nINFO: creating vzdump archive '/var/lib/vz/dump/vzdump-lxc-100-2026_01_01-00_00_00.tar.zst'\nINFO: Finished Backup of VM 100 (00:00:05)\n", 0)
	f.Add("nfs", "ERROR: Backup of VM 100 failed - CT is locked (snapshot)\n", 255)
	f.Add("local", "ERROR: Backup of VM 100 failed - \n", 255)
	f.Add("local", "INFO: creating vzdump archive '/'\n", 0)
	f.Add("local", "", 0)
	f.Add("local", "", 2)
	f.Fuzz(func(t *testing.T, storage, log string, code int) {
		volid, err := vzdumpResult(storage, log, code)
		if (volid == "") == (err == nil) {
			t.Fatalf("vzdumpResult(%q, %d) = %q, %v: want exactly one of a volume ID and an error", log, code, volid, err)
		}
		if code != 0 && err == nil {
			t.Fatalf("exit %d read as success: %q", code, volid)
		}
		if err != nil {
			return
		}
		name, ok := strings.CutPrefix(volid, storage+":backup/")
		if !ok || name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			t.Fatalf("volume ID %q is not %s:backup/NAME", volid, storage)
		}
	})
}

// FuzzPveam reads any `pveam list` and `pveam available` output: every
// name is non-empty and holds no white space (and, from the list, no
// slash), and each name of the list is in the output as a volume ID.
func FuzzPveam(f *testing.F) {
	f.Add("NAME                                                         SIZE\nlocal:vztmpl/debian-13-standard_13.6-1_amd64.tar.zst         123.45MB\n\nTotal\n")
	f.Add("system          alpine-3.22-default_20250617_amd64.tar.xz\nsystem          debian-13-standard_13.6-1_amd64.tar.zst\n")
	f.Add("NAME SIZE\nlocal:vztmpl/ 1MB\nlocal:iso/x.iso 2MB\nlocal:vztmpl/a/b 3MB\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, n := range pveamList(out) {
			if n == "" || strings.ContainsAny(n, "/ \t\r\n\v\f") || !strings.Contains(out, ":vztmpl/"+n) {
				t.Fatalf("pveam list named %q", n)
			}
		}
		for _, n := range pveamAvailable(out) {
			if n == "" || len(strings.Fields(n)) != 1 {
				t.Fatalf("pveam available named %q", n)
			}
		}
	})
}

// FuzzDecodeStatus decodes any container status answer: numbers and
// numeric strings are read, never as NaN or infinity; a counter given as
// a whole number up to 2^53 is read exactly, a negative one as 0; and
// config values (str) read a JSON string as itself.
func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"vmid":100,"status":"running","cpus":null,"cpu":null,"mem":null,"maxmem":null}`))
	f.Add([]byte(`{"vmid":"100","status":"running","mem":"1024","maxmem":2048,"netin":-5}`))
	f.Add([]byte(`{"vmid":100,"mem":"NaN","maxmem":"Inf","disk":1e400}`))
	f.Add([]byte(`{"hostname":"web","cores":2,"net0":"name=eth0,bridge=vmbr0","features":{"x":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v vmstatus
		if err := json.Unmarshal(body, &v); err == nil {
			c := v.container()
			var raw map[string]json.RawMessage
			if json.Unmarshal(body, &raw) == nil {
				for key, got := range map[string]uint64{"mem": c.Mem, "maxmem": c.MaxMem, "disk": c.Disk, "maxdisk": c.MaxDisk,
					"netin": c.NetIn, "netout": c.NetOut, "uptime": c.Uptime} {
					r, ok := raw[strings.ToLower(key)]
					if !ok || hasKeyFold(raw, key) {
						continue
					}
					s := strings.Trim(string(r), `"`)
					if n, err := strconv.ParseInt(s, 10, 64); err == nil && n <= 1<<53 {
						want := uint64(max(n, 0))
						if got != want {
							t.Fatalf("%s = %s decoded as %d, want %d", key, r, got, want)
						}
					}
				}
			}
			for _, x := range []num{v.VMID, v.CPUs, v.CPU, v.Mem, v.MaxMem, v.Uptime} {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("%s decoded a non-finite number", body)
				}
			}
			if c.VMID < 0 {
				t.Fatalf("VMID %d", c.VMID)
			}
		}
		var cfg map[string]str
		if err := json.Unmarshal(body, &cfg); err == nil {
			var plain map[string]any
			if json.Unmarshal(body, &plain) == nil {
				for k, x := range plain {
					if s, ok := x.(string); ok && !hasKeyFold(plain, k) && string(cfg[k]) != s {
						t.Fatalf("config %s = %q decoded as %q", k, s, cfg[k])
					}
				}
			}
		}
	})
}

// hasKeyFold reports whether m has another key equal to k under case
// folding (encoding/json then picks one of them).
func hasKeyFold[V any](m map[string]V, k string) bool {
	for other := range m {
		if other != k && strings.EqualFold(other, k) {
			return true
		}
	}
	return false
}

// TestFuzzVzdumpEmptyFailureIsAnError: a failed vzdump whose ERROR line
// has no reason ("failed - " and nothing) is an error; it was read as a
// success with no volume ID (Classify of blank text is nil). A log naming
// "/" as the archive is no archive.
func TestFuzzVzdumpEmptyFailureIsAnError(t *testing.T) {
	if v, err := vzdumpResult("local", "ERROR: Backup of VM 100 failed - \n", 255); err == nil || v != "" {
		t.Fatalf("= %q, %v; want an error", v, err)
	}
	if v, err := vzdumpResult("local", "INFO: creating vzdump archive '/'\n", 0); err == nil || v != "" {
		t.Fatalf("= %q, %v; want an error", v, err)
	}
}

// TestFuzzPveamListSkipsLinesWithoutATemplate: a line of pveam list that
// is not a template's volume ID gives no name; it gave "".
func TestFuzzPveamListSkipsLinesWithoutATemplate(t *testing.T) {
	got := pveamList("NAME SIZE\nlocal:vztmpl/a.tar.zst 1MB\nTotal 1MB\nlocal:vztmpl/ 0\n")
	if len(got) != 1 || got[0] != "a.tar.zst" {
		t.Fatalf("= %q", got)
	}
}

// TestFuzzDecodeStatusCounters: a negative counter reads as 0 (it was
// converted to a huge unsigned number) and NaN or infinity is not a
// number.
func TestFuzzDecodeStatusCounters(t *testing.T) {
	var v vmstatus
	if err := json.Unmarshal([]byte(`{"vmid":100,"mem":-5,"netin":"-1"}`), &v); err != nil {
		t.Fatal(err)
	}
	if c := v.container(); c.Mem != 0 || c.NetIn != 0 {
		t.Fatalf("negative counters: %+v", c)
	}
	for _, s := range []string{`"NaN"`, `"Inf"`, `"-infinity"`} {
		var n num
		if err := n.UnmarshalJSON([]byte(s)); err == nil {
			t.Errorf("%s decoded as %v", s, float64(n))
		}
	}
}
