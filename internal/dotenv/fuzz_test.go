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

// FuzzParse reads any file: never a map and an error both; every name
// read is one Compose accepts; and the pairs Format can write, written and
// read again, are read back unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"A='x'\nB=\"y\\n\\$z\"\n# c\nexport C=1 # note\n", "\ufeffTZ=Europe/Berlin\r\n",
		"A='unterminated\n", "a.b-c=1\n", "X=\"\\q\"\n", "=x\n", "A='x' y\n", "A=\"x\"#c\n", "A=\xff\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse answered %q with the error %v", m, err)
			}
			return
		}
		writable := map[string]string{}
		for k, v := range m {
			if !parseableName(k) {
				t.Fatalf("read the name %q", k)
			}
			if CheckValue(k, v) == nil {
				writable[k] = v
			}
		}
		out, err := Format(writable)
		if err != nil {
			t.Fatalf("Format refused pairs CheckValue accepts: %v", err)
		}
		back, err := Parse(out)
		if err != nil || len(back) != len(writable) {
			t.Fatalf("Parse(Format(%q)) = %q, %v", writable, back, err)
		}
		for k, v := range writable {
			if back[k] != v {
				t.Fatalf("%s: wrote %q, read %q", k, v, back[k])
			}
		}
	})
}
