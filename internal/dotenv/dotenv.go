// Package dotenv reads and writes the Compose environment files (.env) that
// hold an app's settings inside its container.
//
// Format writes one line per variable, KEY='value', keys sorted. Compose
// takes a single-quoted value literally: no ${...} interpolation, no escape
// sequences, '#' is not a comment. Two characters cannot be written inside
// single quotes without depending on how one Compose version or another
// treats a backslash before a quote (the documentation says \' escapes a
// quote; compose-go keeps the backslash), so a value may not contain a single
// quote and may not end with a backslash. CheckValue states every rule a
// value must meet; Format refuses anything CheckValue refuses.
//
// Parse reads what Format writes, and also plain KEY=value lines, KEY="value"
// lines (with the escapes \\ \" \n \t \r), comments and blank lines, so
// .env files written by hand or by earlier versions read back.
package dotenv

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/proximity-ve/proximity/internal/problem"
)

// MaxValueBytes is the longest value, in bytes, a variable may hold.
const MaxValueBytes = 4096

// CheckName reports whether name is a variable name Proximity writes:
// ^[A-Z_][A-Z0-9_]*$, at most 128 bytes.
func CheckName(name string) error {
	if name == "" {
		return problem.E(problem.Invalid, "variable name is empty")
	}
	if len(name) > 128 {
		return problem.E(problem.Invalid, "%.32s...: variable name longer than 128 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return problem.E(problem.Invalid, "%q: variable name must match ^[A-Z_][A-Z0-9_]*$", name)
		}
	}
	return nil
}

// CheckValue reports whether name and value can be written to a .env file
// and read back unchanged: the name passes CheckName; the value is valid
// UTF-8, at most MaxValueBytes long, holds no control character other than
// tab (never a newline, carriage return or NUL), no single quote, and does
// not end with a backslash. The error is a problem.Invalid whose detail
// starts with the name.
func CheckValue(name, value string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return problem.E(problem.Invalid, "%s: value is %d bytes, longer than the maximum %d", name, len(value), MaxValueBytes)
	}
	if !utf8.ValidString(value) {
		return problem.E(problem.Invalid, "%s: value is not valid UTF-8", name)
	}
	for _, r := range value {
		switch {
		case r == 0:
			return problem.E(problem.Invalid, "%s: value contains a NUL byte", name)
		case r == '\n' || r == '\r':
			return problem.E(problem.Invalid, "%s: value contains a line break", name)
		case r == '\t':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029':
			return problem.E(problem.Invalid, "%s: value contains the control character %U", name, r)
		case r == '\'':
			return problem.E(problem.Invalid, "%s: value contains a single quote, which a Compose .env file cannot hold literally", name)
		}
	}
	if strings.HasSuffix(value, `\`) {
		return problem.E(problem.Invalid, "%s: value ends with a backslash, which a Compose .env file cannot hold literally", name)
	}
	return nil
}

// Format writes m as a Compose .env file: one KEY='value' line per key,
// sorted. It refuses (and writes nothing for) any pair CheckValue refuses.
func Format(m map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		if err := CheckValue(k, m[k]); err != nil {
			return nil, err
		}
		b.WriteString(k)
		b.WriteString("='")
		b.WriteString(m[k])
		b.WriteString("'\n")
	}
	return b.Bytes(), nil
}

// Parse reads a .env file: blank lines and lines starting with '#' are
// skipped; an "export " prefix is allowed; each other line is KEY=value with
// the value single-quoted (literal), double-quoted (escapes \\ \" \n \t \r
// and \$), or unquoted (trimmed, " #" starts a comment). Interpolation is not
// performed: "${X}" reads back as those four characters. A later line for a
// key replaces an earlier one. Quoted values span one line only.
func Parse(data []byte) (map[string]string, error) {
	if !utf8.Valid(data) {
		return nil, problem.E(problem.Invalid, ".env is not valid UTF-8")
	}
	m := map[string]string{}
	s := strings.TrimPrefix(string(data), "\ufeff")
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		k, v, ok, err := parseLine(line)
		if err != nil {
			return nil, problem.E(problem.Invalid, ".env line %d: %s", n+1, err)
		}
		if ok {
			m[k] = v
		}
	}
	return m, nil
}

func parseLine(line string) (key, value string, ok bool, err error) {
	t := strings.TrimLeft(line, " \t")
	if t == "" || t[0] == '#' {
		return "", "", false, nil
	}
	t = strings.TrimPrefix(t, "export ")
	key, rest, found := strings.Cut(t, "=")
	if !found {
		return "", "", false, fmt.Errorf("no '=' after the name")
	}
	key = strings.TrimRight(key, " \t")
	if !parseableName(key) {
		return "", "", false, fmt.Errorf("%q is not a variable name", key)
	}
	rest = strings.TrimLeft(rest, " \t")
	switch {
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return "", "", false, fmt.Errorf("%s: unterminated single-quoted value", key)
		}
		value, rest = rest[1:1+end], rest[2+end:]
	case strings.HasPrefix(rest, `"`):
		var b strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					c = '\n'
				case 't':
					c = '\t'
				case 'r':
					c = '\r'
				case '\\', '"', '$':
					c = rest[i]
				default:
					b.WriteByte('\\')
					c = rest[i]
				}
			}
			b.WriteByte(c)
		}
		if i >= len(rest) {
			return "", "", false, fmt.Errorf("%s: unterminated double-quoted value", key)
		}
		value, rest = b.String(), rest[i+1:]
	default:
		if i := strings.Index(rest, " #"); i >= 0 {
			rest = rest[:i]
		} else if i := strings.Index(rest, "\t#"); i >= 0 {
			rest = rest[:i]
		}
		return key, strings.TrimRight(rest, " \t"), true, nil
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest != "" && rest[0] != '#' {
		return "", "", false, fmt.Errorf("%s: unexpected text after the closing quote", key)
	}
	return key, value, true, nil
}

// parseableName accepts the names Compose accepts ([A-Za-z0-9_.-]+), a
// wider set than CheckName, so files written by hand read back.
func parseableName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
