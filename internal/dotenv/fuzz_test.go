package dotenv

import (
	"bytes"
	"testing"
)

// FuzzRoundTrip checks that every pair Format accepts is written as exactly
// one line and read back unchanged by Parse, and that Parse never panics on
// what Format refuses.
func FuzzRoundTrip(f *testing.F) {
	f.Add("TZ", "Europe/Berlin")
	f.Add("TZ", "a\nEVIL=1")
	f.Add("X", "${HOME} $(id) `id`")
	f.Add("X", `a\'b`)
	f.Add("X", "it's")
	f.Fuzz(func(t *testing.T, name, value string) {
		m := map[string]string{name: value, "OTHER": "1"}
		out, err := Format(m)
		if err != nil {
			if CheckValue(name, value) == nil && name != "OTHER" {
				t.Fatalf("Format refused %q=%q that CheckValue accepts: %v", name, value, err)
			}
			_, _ = Parse([]byte(name + "=" + value + "\n"))
			return
		}
		if got := bytes.Count(out, []byte("\n")); got != len(m) {
			t.Fatalf("Format wrote %d lines for %d keys: %q", got, len(m), out)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Format(%q=%q)): %v", name, value, err)
		}
		if len(back) != len(m) || back[name] != m[name] || back["OTHER"] != m["OTHER"] {
			t.Fatalf("Parse(Format(m)) = %q, want %q", back, m)
		}
	})
}
