package pvesim

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The simulated Compose project's logs. A project that is up prints one
// line every LogEvery: first a start line per service, then periodic
// lines, the services taking turns. Line i is a pure function of the time
// `up` ran, the project's services and i, so every read agrees with every
// other and a test can predict them.
const (
	// LogEvery is the interval between two lines of a running project.
	LogEvery = 2 * time.Second
	// composeUpAt holds the time `docker compose up` started the project.
	composeUpAt = "/var/lib/pvesim/compose-up"
	// dockerTime is how Docker prints timestamps (--timestamps).
	dockerTime = "2006-01-02T15:04:05.000000000Z"
)

// composeServices lists the services of a Compose document, sorted; a
// document that does not parse has one service, "app".
func composeServices(doc string) []string {
	var d struct {
		Services map[string]any `yaml:"services"`
	}
	if yaml.Unmarshal([]byte(doc), &d) != nil || len(d.Services) == 0 {
		return []string{"app"}
	}
	out := make([]string, 0, len(d.Services))
	for s := range d.Services {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// periodic are the messages of a running service, in turn.
var periodic = []string{
	"GET /alive HTTP/1.1 200 %d ms",
	"health check passed (%d)",
	"worker: %d jobs done, 0 queued",
	"GET / HTTP/1.1 200 %d ms",
}

// logLine is line i of a project that came up at up.
func logLine(up time.Time, svcs []string, i int) (at time.Time, svc, msg string) {
	at = up.Add(time.Duration(i) * LogEvery)
	svc = svcs[i%len(svcs)]
	if i < len(svcs) {
		return at, svc, fmt.Sprintf("%s: starting, listening", svc)
	}
	return at, svc, fmt.Sprintf(periodic[i%len(periodic)], 1+i%97)
}

// logsOpts are `docker compose logs` options.
type logsOpts struct {
	tail       int // -1: all
	since      time.Time
	follow     bool
	timestamps bool
}

// parseLogs reads the options after `logs`: --no-color, -t/--timestamps,
// -f/--follow, --tail N|all, --since TIME|DURATION (also as --opt=value).
// Service names are not simulated.
func parseLogs(args []string, now time.Time) (logsOpts, error) {
	o := logsOpts{tail: -1}
	for i := 0; i < len(args); i++ {
		a, val, hasVal := strings.Cut(args[i], "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			return args[i], nil
		}
		switch a {
		case "--no-color":
		case "-t", "--timestamps":
			o.timestamps = true
		case "-f", "--follow":
			o.follow = true
		case "-n", "--tail":
			v, err := value()
			if err != nil {
				return o, err
			}
			if v == "all" {
				o.tail = -1
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("invalid argument %q for \"-n, --tail\" flag: strconv.ParseInt: parsing %q: invalid syntax", v, v)
			}
			o.tail = n
		case "--since":
			v, err := value()
			if err != nil {
				return o, err
			}
			if d, err := time.ParseDuration(v); err == nil {
				o.since = now.Add(-d)
			} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				o.since = t
			} else {
				return o, fmt.Errorf("invalid value for \"since\": failed to parse value as time or duration: %q", v)
			}
		default:
			return o, fmt.Errorf("unknown flag: %s", a)
		}
	}
	return o, nil
}

// composeLogs is `docker compose logs`: the lines so far, then, with
// --follow, a function that prints the next lines as they come until the
// project stops (the caller runs it once the state lock is released).
func (c *pct) composeLogs(ct *CT, doc string, args []string) int {
	now := time.Now()
	o, err := parseLogs(args, now)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	upText, up := ct.Files[composeUpAt]
	if _, running := ct.Files[composeState]; !running || !up {
		return 0 // no container: nothing to print
	}
	upAt, err := time.Parse(time.RFC3339Nano, upText)
	if err != nil {
		fmt.Fprintln(c.stderr, "compose state:", err)
		return 1
	}
	svcs := composeServices(doc)
	width := 0
	for _, s := range svcs {
		width = max(width, len(containerName(s)))
	}
	print := func(w io.Writer, i int) {
		at, svc, msg := logLine(upAt, svcs, i)
		ts := ""
		if o.timestamps {
			ts = at.UTC().Format(dockerTime) + " "
		}
		fmt.Fprintf(w, "%-*s  | %s%s\n", width, containerName(svc), ts, msg)
	}
	n := 0 // lines printed by now
	if !now.Before(upAt) {
		n = int(now.Sub(upAt)/LogEvery) + 1
	}
	first := 0
	for first < n {
		if at, _, _ := logLine(upAt, svcs, first); !at.Before(o.since) {
			break
		}
		first++
	}
	if o.tail >= 0 {
		first = max(first, n-o.tail)
	}
	for i := first; i < n; i++ {
		print(c.stdout, i)
	}
	if o.follow {
		c.follow = func(w io.Writer) int {
			vmid := ct.VMID
			for i := n; ; i++ {
				at, _, _ := logLine(upAt, svcs, i)
				time.Sleep(time.Until(at))
				still := false
				_ = c.st.View(func(n *Node) error {
					if ct, ok := n.CTs[vmid]; ok && ct.Status == "running" && ct.Files[composeUpAt] == upText {
						_, still = ct.Files[composeState]
					}
					return nil
				})
				if !still {
					return 0 // the containers stopped: logs -f ends
				}
				print(w, i)
			}
		}
	}
	return 0
}

// containerName is the name Compose gives a service's first container in
// the project "app" (the app's directory).
func containerName(svc string) string { return "app-" + svc + "-1" }
