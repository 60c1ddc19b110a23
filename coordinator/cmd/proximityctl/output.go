package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// print writes what a command shows: a table of header and rows with
// --output table, and with --output json the API's own JSON — the body of
// the command's last e.call exactly as the server sent it, indented —
// so that -o json has the API's field names and every field, whatever the
// command decoded for its table. v is encoded only when the command made
// no call through e.call (login, local output).
func (e *env) print(v any, header []string, rows [][]string) error {
	switch e.output {
	case "json":
		if len(bytes.TrimSpace(e.answer)) > 0 {
			return e.printRaw(e.answer)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table":
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output: %q must be table or json", e.output)
}

// printRaw writes an API answer indented, keys and values as they came.
func (e *env) printRaw(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		// Not JSON (it would be a server bug): show it as it is.
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := e.stdout.Write(buf.Bytes())
	return err
}

// Units of tables: sizes in binary units, CPU as a percentage, durations
// in the two largest units. -o json keeps the API's numbers.

// bytesIEC writes a size in bytes with binary units: "512 B", "128 MiB",
// "1.5 GiB".
func bytesIEC(b float64) string {
	const units = "KMGTPE"
	if b < 1024 {
		return strconv.FormatFloat(b, 'f', -1, 64) + " B"
	}
	i := -1
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	s := strconv.FormatFloat(b, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i:i+1] + "iB"
}

// percent writes a fraction (Proxmox's cpu: 0.25 is a quarter of the
// CPUs the guest may use) as a percentage.
func percent(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f*100, 'f', 1, 64), ".0") + "%"
}

// shortDuration writes d in its two largest units: "3d4h", "4h12m",
// "5m3s", "42s".
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	parts := []struct {
		n    int64
		unit string
	}{{s / 86400, "d"}, {s % 86400 / 3600, "h"}, {s % 3600 / 60, "m"}, {s % 60, "s"}}
	for i, p := range parts {
		if p.n == 0 && i < len(parts)-1 {
			continue
		}
		out := strconv.FormatInt(p.n, 10) + p.unit
		if i+1 < len(parts) && parts[i+1].n != 0 {
			out += strconv.FormatInt(parts[i+1].n, 10) + parts[i+1].unit
		}
		return out
	}
	return "0s"
}

// number reads a JSON number of a decoded answer; ok is false for null or
// anything else.
func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}
