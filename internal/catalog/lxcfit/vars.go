package lxcfit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Subst rewrites every string of v (a decoded YAML or JSON document) so
// that each variable reference resolve knows is replaced by its value:
// $NAME, ${NAME} and ${NAME<modifier>}. A reference resolve does not know
// is written ${NAME} (with its modifier, if any), so that Compose and the
// catalog's validation both see it; $$ stays an escaped dollar.
func Subst(v any, resolve func(name string) (string, bool)) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = Subst(e, resolve)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = Subst(e, resolve)
		}
		return out
	case string:
		return substString(t, resolve)
	}
	return v
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

func substString(s string, resolve func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch n := s[i+1]; {
		case n == '$':
			b.WriteString("$$")
			i += 2
		case n == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			body := s[i+2 : i+2+end]
			j := 0
			for j < len(body) && isNameChar(body[j]) {
				j++
			}
			name, mod := body[:j], body[j:]
			if name == "" || !isNameStart(name[0]) {
				b.WriteString(s[i : i+3+end])
			} else if v, ok := resolve(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("${" + name + mod + "}")
			}
			i += 3 + end
		case isNameStart(n):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name := s[i+1 : j]
			if v, ok := resolve(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("${" + name + "}")
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

var defaultRE = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}`)

// withDefaults replaces each ${NAME:-default} or ${NAME-default} of s by
// its default: what a value means when nobody sets the variable.
func withDefaults(s string) string {
	return defaultRE.ReplaceAllString(s, "$1")
}

// varRE is the catalog's own reading of a variable reference.
var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// referenced lists the variables the text refers to as ${NAME}, sorted.
func referenced(text string) []string {
	seen := map[string]bool{}
	for _, m := range varRE.FindAllStringSubmatch(text, -1) {
		seen[m[1]] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Normalize turns what a YAML decoder gives for a document into plain
// map[string]any, []any and scalars (a map with a non-string key gets the
// key's text), so the rest of the package deals with one shape.
func Normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = Normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = Normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = Normalize(e)
		}
		return out
	}
	return v
}
