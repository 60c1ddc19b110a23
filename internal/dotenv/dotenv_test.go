package dotenv

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/problem"
)

// TestEnvInjectionAttemptsStayOneLiteralLine protects the .env file from a
// value that tries to add a variable, interpolate one, or run a command:
// every accepted value is written on its own single line and reads back
// byte for byte.
func TestEnvInjectionAttemptsStayOneLiteralLine(t *testing.T) {
	m := map[string]string{
		"CMD":      "$(rm -rf /)",
		"BACKTICK": "`id`",
		"INTERP":   "${HOME}",
		"DOLLAR":   "$HOME and $$ and $",
		"DQUOTE":   `say "hi" \" there`,
		"BACKSL":   `C:\path\n\t\\x`,
		"HASH":     "a # not a comment",
		"EQUALS":   "a=b=c",
		"SPACES":   "  padded  ",
		"TAB":      "a\tb",
		"EMPTY":    "",
		"UNICODE":  "grüße ✓",
		"EVIL_EQ":  "x EVIL=1",
	}
	out, err := Format(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bytes.Count(out, []byte("\n")), len(m); got != want {
		t.Fatalf("Format wrote %d lines for %d keys:\n%s", got, want, out)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "=")
		if _, ok := m[k]; !ok || !strings.HasPrefix(v, "'") || !strings.HasSuffix(v, "'") {
			t.Errorf("line %q is not KEY='value' for a known key", line)
		}
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, back); d != "" {
		t.Fatalf("Parse(Format(m)) differs (-want +got):\n%s", d)
	}
}

func TestFormatSortsKeys(t *testing.T) {
	out, err := Format(map[string]string{"B": "2", "A": "1", "_C": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "A='1'\nB='2'\n_C='3'\n"; string(out) != want {
		t.Fatalf("Format = %q, want %q", out, want)
	}
}

// TestEnvValueRefusals protects the .env file from values that would add a
// line, be cut short, or be read back differently.
func TestEnvValueRefusals(t *testing.T) {
	cases := []struct {
		name, value, rule string
	}{
		{"TZ", "a\nEVIL=1", "line break"},
		{"TZ", "a\rEVIL=1", "line break"},
		{"TZ", "a\x00b", "NUL"},
		{"TZ", strings.Repeat("x", 100*1024), "longer than the maximum 4096"},
		{"TZ", strings.Repeat("x", MaxValueBytes+1), "longer than the maximum"},
		{"TZ", "\xff\xfe", "UTF-8"},
		{"TZ", "a\x1bb", "control character"},
		{"TZ", "a\x7f", "control character"},
		{"TZ", "a\u0085b", "control character"},
		{"TZ", "a\u2028b", "control character"},
		{"TZ", "it's", "single quote"},
		{"TZ", `trailing\`, "backslash"},
		{"tz", "x", "must match"},
		{"1TZ", "x", "must match"},
		{"T-Z", "x", "must match"},
		{"", "x", "empty"},
		{strings.Repeat("A", 129), "x", "longer than 128"},
	}
	for _, c := range cases {
		err := CheckValue(c.name, c.value)
		if err == nil || !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), c.rule) {
			t.Errorf("CheckValue(%.20q, %.20q) = %v, want Invalid naming %q", c.name, c.value, err, c.rule)
			continue
		}
		if c.name != "" && len(c.name) <= 32 && !strings.Contains(err.Error(), c.name) {
			t.Errorf("CheckValue error %q does not name %q", err, c.name)
		}
		if out, err := Format(map[string]string{"OK": "1", c.name: c.value}); err == nil {
			t.Errorf("Format accepted %.20q=%.20q: %q", c.name, c.value, out)
		}
	}
	for _, ok := range []string{"", "a\tb", strings.Repeat("é", MaxValueBytes/2), `a\b`, `"`, "$(x)"} {
		if err := CheckValue("OK_1", ok); err != nil {
			t.Errorf("CheckValue(%.20q) = %v, want nil", ok, err)
		}
	}
}

func TestParseReadsHandWrittenFiles(t *testing.T) {
	in := "\ufeff# comment\n\nPLAIN=value # comment\nexport EXP=1\nSP = spaced \nDQ=\"a\\nb \\\"q\\\" \\$x \\\\ \\z\"\nSQ='lit # $X' # trailing comment\nEMPTY=\nlower.case-name=ok\r\nHASHED=a#b\nDUP=1\nDUP=2\n"
	want := map[string]string{
		"PLAIN": "value", "EXP": "1", "SP": "spaced", "DQ": "a\nb \"q\" $x \\ \\z",
		"SQ": "lit # $X", "EMPTY": "", "lower.case-name": "ok", "HASHED": "a#b", "DUP": "2",
	}
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Parse (-want +got):\n%s", d)
	}
}

func TestParseRefusesMalformedLines(t *testing.T) {
	for _, in := range []string{
		"NOEQUALS\n", "A='open\n", "A=\"open\n", "A='x' junk\n", "=v\n", "BAD NAME=x\n", "A=\xff\n",
	} {
		if m, err := Parse([]byte(in)); err == nil || !problem.Is(err, problem.Invalid) {
			t.Errorf("Parse(%q) = %v, %v; want an Invalid error", in, m, err)
		}
	}
}
