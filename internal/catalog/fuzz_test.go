package catalog

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/mail"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/problem"
)

// FuzzParse reads any document as a catalog file. A refusal is a list of
// *Error naming the file and a field, each with a message. An accepted
// entry is written out again as YAML and as JSON (how the replicated
// state holds it) and each reads back as the same entry; the YAML it is
// written as is a fixed point (writing the entry read back gives the same
// bytes). The seed corpus is every starter file and testdata/fuzz.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	files, _ := fs.Glob(StarterFS(), "starter/*.yaml")
	for _, name := range files {
		b, err := fs.ReadFile(StarterFS(), name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("f.yaml", data)
		if err != nil {
			for _, one := range splitJoined(err) {
				var ce *Error
				if !errors.As(one, &ce) || ce.File != "f.yaml" || ce.Field == "" || ce.Msg == "" {
					t.Fatalf("an error that does not name the file and a field: %#v", one)
				}
			}
			return
		}
		out, err := yaml.Marshal(e)
		if err != nil {
			t.Fatalf("an accepted entry does not marshal: %v", err)
		}
		back, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("the accepted entry written out does not parse: %v\n%s", err, out)
		}
		if !equalEntries(e, back) {
			t.Fatalf("read back differently:\n%+v\n%+v", e, back)
		}
		out2, _ := yaml.Marshal(back)
		if string(out2) != string(out) {
			t.Fatalf("the YAML form is not a fixed point:\n%s\n---\n%s", out, out2)
		}
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON Entry
		if err := json.Unmarshal(j, &fromJSON); err != nil {
			t.Fatalf("the JSON form does not decode: %v", err)
		}
		if err := fromJSON.Validate("json"); err != nil || !equalEntries(e, fromJSON) {
			t.Fatalf("the JSON form reads back as %+v, %v", fromJSON, err)
		}
	})
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// equalEntries compares entries, an empty list equal to none.
func equalEntries(a, b Entry) bool {
	norm := func(e Entry) Entry {
		e.Tags, e.Ports, e.Environment, e.Settings, e.Volumes = nilIfEmpty(e.Tags), nilIfEmpty(e.Ports),
			nilIfEmpty(e.Environment), nilIfEmpty(e.Settings), nilIfEmpty(e.Volumes)
		e.Update.Commands = nilIfEmpty(e.Update.Commands)
		for i := range e.Settings {
			e.Settings[i].Options = nilIfEmpty(e.Settings[i].Options)
		}
		return e
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

var fuzzTypes = []string{TypeString, TypeInt, TypeBool, TypeEnum, TypeSecret, TypeEmail, TypeURL, TypePort, "float"}

// FuzzValidateSettings declares one setting from the fuzzer's values and
// gives it a value. When the declaration is valid: a value and an error
// are never answered together; a refusal is Invalid, names the setting
// and never quotes a secret's value; every value answered passes the
// setting's own rules (and, by type, an independent reading: a canonical
// integer, a port, true or false, an option, an address net/mail reads
// back unchanged), can be written to a .env file, and is accepted again
// unchanged, both as a whole set of settings and as a change.
func FuzzValidateSettings(f *testing.F) {
	f.Add(uint8(1), false, true, int64(1), true, int64(10), "", "", "", uint8(0), "5", true)
	f.Add(uint8(7), true, false, int64(0), true, int64(1024), "", "", "8080", uint8(0), "99999", true)
	f.Add(uint8(4), true, false, int64(0), false, int64(0), "[a-z]+", "", "", uint8(32), "hunter2", true)
	f.Add(uint8(4), false, true, int64(12), false, int64(0), "", "", "", uint8(0), "short", true)
	f.Add(uint8(3), false, false, int64(0), false, int64(0), "", "a,b,c d", "b", uint8(0), "c d", true)
	f.Add(uint8(5), false, false, int64(0), false, int64(0), "", "", "", uint8(0), "Ann <ann@example.org>", true)
	f.Add(uint8(6), true, false, int64(0), false, int64(0), "https://.*", "", "", uint8(0), "https://x.example", true)
	f.Add(uint8(2), false, false, int64(0), false, int64(0), "", "", "false", uint8(0), "", false)
	f.Add(uint8(0), false, false, int64(0), false, int64(0), "", "", "x", uint8(0), "a\nB=1", true)
	f.Fuzz(func(t *testing.T, typ uint8, required, hasMin bool, lo int64, hasMax bool, hi int64, pattern, options, def string, generate uint8, value string, given bool) {
		s := Setting{Name: "OPT", Type: fuzzTypes[int(typ)%len(fuzzTypes)], Label: "Option", Required: required,
			Pattern: pattern, Default: def, Generate: int(generate)}
		if s.Type == TypeSecret {
			s.Name = "OPT_SECRET"
		}
		if hasMin {
			s.Min = &lo
		}
		if hasMax {
			s.Max = &hi
		}
		if options != "" {
			s.Options = strings.Split(options, ",")
		}
		e := Entry{ID: "demo", Settings: []Setting{s}}
		var declErrs []string
		e.validateSettings(func(field, format string, args ...any) { declErrs = append(declErrs, field) })
		if len(declErrs) > 0 {
			return
		}
		values := map[string]string{}
		if given {
			values[s.Name] = value
		}
		out, err := ValidateSettings(e, values)
		if err != nil {
			if out != nil {
				t.Fatalf("ValidateSettings answered %q with the error %v", out, err)
			}
			if !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), "settings."+s.Name) {
				t.Fatalf("%v: not an Invalid problem naming settings.%s", err, s.Name)
			}
			if s.Secret() && len(value) >= 3 && !strings.Contains(pattern, value) &&
				strings.Contains(err.Error(), strconv.Quote(value)) {
				t.Fatalf("the secret value %q is quoted in the error %v", value, err)
			}
			return
		}
		for k, v := range out {
			if k != s.Name {
				t.Fatalf("ValidateSettings answered the unknown setting %q", k)
			}
			if v == "" {
				if s.Required {
					t.Fatalf("a required setting answered empty")
				}
				continue
			}
			if rule := s.check(v); rule != "" {
				t.Fatalf("answered %q, which breaks its rule: %s", v, rule)
			}
			independent(t, s, v)
		}
		if _, ok := out[s.Name]; !ok && s.Required && !(s.Secret() && s.Generate > 0) {
			t.Fatalf("the required setting is missing from %q", out)
		}
		if _, err := dotenv.Format(out); err != nil {
			t.Fatalf("the answer %q cannot be written to a .env file: %v", out, err)
		}
		if again, err := ValidateSettings(e, out); err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("ValidateSettings of its own answer %q = %q, %v", out, again, err)
		}
		if again, err := ValidateChanges(e, out); err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("ValidateChanges of the answer %q = %q, %v", out, again, err)
		}
	})
}

// independent checks an accepted value of s by a reading of its own.
func independent(t *testing.T, s Setting, v string) {
	t.Helper()
	switch s.Type {
	case TypeInt, TypePort:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v || s.Min != nil && n < *s.Min || s.Max != nil && n > *s.Max {
			t.Fatalf("%s %q accepted: not a canonical integer within [%v, %v]", s.Type, v, s.Min, s.Max)
		}
		if s.Type == TypePort && (n < 1 || n > 65535) {
			t.Fatalf("port %d accepted", n)
		}
	case TypeBool:
		if v != "true" && v != "false" {
			t.Fatalf("bool %q accepted", v)
		}
	case TypeEnum:
		found := false
		for _, o := range s.Options {
			found = found || o == v
		}
		if !found {
			t.Fatalf("enum %q accepted, not one of %q", v, s.Options)
		}
	case TypeEmail:
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v || a.Name != "" {
			t.Fatalf("e-mail %q accepted: %v %v", v, a, err)
		}
	case TypeURL:
		if l := strings.ToLower(v); !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
			t.Fatalf("URL %q accepted", v)
		}
	}
}
