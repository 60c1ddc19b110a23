package pvesim

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// optKind is how an option takes its value.
type optKind int

const (
	optString optKind = iota
	optBool
	optInt
)

// cliError is a failure the CLI prints to stderr before exiting 255.
type cliError struct{ msg string }

func (e *cliError) Error() string { return e.msg }

func fail(format string, args ...any) error { return &cliError{fmt.Sprintf(format, args...)} }

type spec struct {
	args  []string
	opts  map[string]optKind
	usage string
}

// runTool runs one subcommand of a Proxmox CLI tool: it looks the command
// up, parses its arguments and prints any failure to stderr with exit 255,
// as the Perl CLI handlers do.
func runTool(tool string, specs map[string]spec, args []string, stderr io.Writer, dispatch func(cmd string, sp spec, p parsed) error) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ERROR: no command specified")
		return 255
	}
	sp, ok := specs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ERROR: unknown command '%s %s'\n", tool, args[0])
		return 255
	}
	p, err := sp.parse(args[1:])
	if err == nil {
		err = dispatch(args[0], sp, p)
	}
	if err != nil {
		fmt.Fprintln(stderr, strings.TrimRight(err.Error(), "\n"))
		return 255
	}
	return 0
}

type parsed struct {
	pos  []string
	opts map[string]string
}

var boolWords = map[string]string{"1": "1", "0": "0", "true": "1", "false": "0", "yes": "1", "no": "0", "on": "1", "off": "0"}

// parse reads Proxmox CLI arguments: -opt and --opt, --opt=value, bare
// booleans, and an exact count of positional arguments.
func (s spec) parse(args []string) (parsed, error) {
	p := parsed{opts: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			p.pos = append(p.pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		kind, ok := s.opts[name]
		if !ok {
			return p, fail("Unknown option: %s\n400 unable to parse option\n%s", name, s.usage)
		}
		switch {
		case hasVal:
		case kind == optBool:
			val = "1"
			if i+1 < len(args) {
				if _, isBool := boolWords[strings.ToLower(args[i+1])]; isBool {
					val = args[i+1]
					i++
				}
			}
		case i+1 < len(args):
			val = args[i+1]
			i++
		default:
			return p, fail("Option %s requires an argument\n400 unable to parse option\n%s", name, s.usage)
		}
		if kind == optBool {
			b, ok := boolWords[strings.ToLower(val)]
			if !ok {
				return p, fail("400 unable to parse boolean option\n%s", s.usage)
			}
			val = b
		}
		p.opts[name] = val
	}
	if len(p.pos) < len(s.args) {
		return p, fail("400 not enough arguments\n%s", s.usage)
	}
	if len(p.pos) > len(s.args) {
		return p, fail("400 too many arguments\n%s", s.usage)
	}
	return p, nil
}

// paramErrors is "400 Parameter verification failed." with one line per
// parameter, sorted, and the usage line.
type paramErrors map[string]string

func (pe paramErrors) err(usage string) error {
	if len(pe) == 0 {
		return nil
	}
	keys := make([]string, 0, len(pe))
	for k := range pe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := []string{"400 Parameter verification failed."}
	for _, k := range keys {
		lines = append(lines, k+": "+pe[k])
	}
	return fail("%s\n%s", strings.Join(lines, "\n"), usage)
}

var (
	vmidRE     = regexp.MustCompile(`^[1-9][0-9]{2,8}$`)
	dnsNameRE  = regexp.MustCompile(`^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`)
	volidRE    = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):(.+)$`)
	diskSizeRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):(\d+)$`)
)

// vmid checks the pve-vmid format.
func vmid(pe paramErrors, s string) int {
	if !vmidRE.MatchString(s) {
		pe["vmid"] = "invalid format - value does not look like a valid VM ID"
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}

// intOpt checks an integer option against a range.
func intOpt(pe paramErrors, opts map[string]string, name string, min, max, def int) int {
	v, ok := opts[name]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		pe[name] = fmt.Sprintf("type check ('integer') failed - got '%s'", v)
	case n < min:
		pe[name] = fmt.Sprintf("value must have a minimum value of %d", min)
	case n > max:
		pe[name] = fmt.Sprintf("value must have a maximum value of %d", max)
	}
	return n
}
