package catalog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/problem"
)

// withSettings is the good entry with a settings block, whose variables the
// Compose document uses.
func withSettings(settings string) string {
	return strings.Replace(good, "health_check:", "settings:\n"+settings+"health_check:", 1)
}

func TestSettingDeclarationsAreValidated(t *testing.T) {
	cases := []struct{ name, settings, field, msg string }{
		{"bad name", "  - {name: lower, type: string, label: L}\n", "settings[0].name", "upper-case"},
		{"twice", "  - {name: A, type: string, label: L}\n  - {name: A, type: int, label: L}\n", "settings[1].name", "declared twice"},
		{"also in environment", "  - {name: SECRET, type: secret, label: L}\n", "settings[0].name", "also in environment"},
		{"unknown type", "  - {name: A, type: float, label: L}\n", "settings[0].type", "must be one of"},
		{"no label", "  - {name: A, type: string}\n", "settings[0].label", "required"},
		{"generate on a string", "  - {name: A, type: string, label: L, generate: 32}\n", "settings[0].generate", "only a secret"},
		{"generate too short", "  - {name: S, type: secret, label: L, generate: 8}\n", "settings[0].generate", "outside 16-128"},
		{"generate too long", "  - {name: S, type: secret, label: L, generate: 129}\n", "settings[0].generate", "outside 16-128"},
		{"secret default", "  - {name: S, type: secret, label: L, default: hunter22}\n", "settings[0].default", "a secret has no default"},
		{"secret-looking string", "  - {name: DB_PASSWORD, type: string, label: L}\n", "settings[0].type", "declare it type secret"},
		{"enum without options", "  - {name: A, type: enum, label: L}\n", "settings[0].options", "needs options"},
		{"options on a string", "  - {name: A, type: string, label: L, options: [x]}\n", "settings[0].options", "only an enum"},
		{"option twice", "  - {name: A, type: enum, label: L, options: [x, x]}\n", "settings[0].options[1]", "twice"},
		{"unwritable option", "  - {name: A, type: enum, label: L, options: [\"it's\"]}\n", "settings[0].options[0]", ".env"},
		{"min on a bool", "  - {name: A, type: bool, label: L, min: 1}\n", "settings[0]", "min and max apply"},
		{"min above max", "  - {name: A, type: int, label: L, min: 5, max: 1}\n", "settings[0].min", "above max"},
		{"port max", "  - {name: A, type: port, label: L, max: 70000}\n", "settings[0].max", "outside 1-65535"},
		{"negative length", "  - {name: A, type: string, label: L, min: -1}\n", "settings[0].min", "negative"},
		{"pattern does not compile", "  - {name: A, type: string, label: L, pattern: \"a(\"}\n", "settings[0].pattern", "does not compile"},
		{"pattern on an int", "  - {name: A, type: int, label: L, pattern: \"1\"}\n", "settings[0].pattern", "string, secret"},
		{"default breaks max", "  - {name: A, type: int, label: L, max: 10, default: 11}\n", "settings[0].default", "above the maximum 10"},
		{"default not an option", "  - {name: A, type: enum, label: L, options: [x], default: y}\n", "settings[0].default", "must be one of x"},
		{"default not a bool", "  - {name: A, type: bool, label: L, default: maybe}\n", "settings[0].default", "true or false"},
		{"default not a url", "  - {name: A, type: url, label: L, default: ftp://x}\n", "settings[0].default", "not an http"},
		{"default with a newline", "  - {name: A, type: string, label: L, default: \"a\\nB=1\"}\n", "settings[0].default", "line break"},
		{"default breaks pattern", "  - {name: A, type: string, label: L, pattern: \"[a-z]+\", default: ABC}\n", "settings[0].default", "does not match"},
	}
	for _, c := range cases {
		_, err := Parse("demo.yaml", []byte(withSettings(c.settings)))
		if err == nil || !strings.Contains(err.Error(), "demo.yaml: "+c.field+": ") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (want demo.yaml: %s: ...%s...)", c.name, err, c.field, c.msg)
		}
	}
}

func TestSettingsCountAsComposeVariables(t *testing.T) {
	body := strings.Replace(good, "SECRET: ${SECRET}", "SECRET: ${SECRET}\n        PORT: ${PORT}", 1)
	if _, err := Parse("demo.yaml", []byte(body)); err == nil || !strings.Contains(err.Error(), "${PORT} is neither") {
		t.Fatalf("an undeclared variable: %v", err)
	}
	e, err := Parse("demo.yaml", []byte(strings.Replace(withSettings("  - {name: PORT, type: port, label: Port, default: 8080}\n  - {name: ON, type: bool, label: On, default: false}\n"), "SECRET: ${SECRET}", "SECRET: ${SECRET}\n        PORT: ${PORT}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	// An unquoted YAML scalar (8080, false) is read as its text.
	if s, _ := e.Setting("PORT"); s.Default != "8080" {
		t.Fatalf("default of PORT: %q", s.Default)
	}
	if s, _ := e.Setting("ON"); s.Default != "false" {
		t.Fatalf("default of ON: %q", s.Default)
	}
}

func i64(n int64) *int64 { return &n }

func demoSettings() Entry {
	return Entry{ID: "demo", Settings: []Setting{
		{Name: "NAME", Type: TypeString, Label: "Name", Min: i64(2), Max: i64(8), Pattern: "[a-z]+"},
		{Name: "COUNT", Type: TypeInt, Label: "Count", Min: i64(1), Max: i64(10), Default: "3"},
		{Name: "ON", Type: TypeBool, Label: "On", Default: "false"},
		{Name: "MODE", Type: TypeEnum, Label: "Mode", Options: []string{"fast", "safe"}, Default: "safe"},
		{Name: "TOKEN", Type: TypeSecret, Label: "Token", Min: i64(16), Generate: 32},
		{Name: "PASS", Type: TypeSecret, Label: "Pass", Required: true},
		{Name: "MAIL", Type: TypeEmail, Label: "Mail"},
		{Name: "SITE", Type: TypeURL, Label: "Site"},
		{Name: "PORT", Type: TypePort, Label: "Port", Max: i64(65535), Default: "8080"},
	}}
}

func TestValidateSettingsFillsDefaults(t *testing.T) {
	got, err := ValidateSettings(demoSettings(), map[string]string{"PASS": "correct horse", "NAME": "abc", "ON": "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"PASS": "correct horse", "NAME": "abc", "ON": "true", "COUNT": "3", "MODE": "safe", "PORT": "8080"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("resolved (-want +got):\n%s", d)
	}
	got, err = ValidateSettings(demoSettings(), map[string]string{"PASS": "p", "TOKEN": "", "MAIL": "a@example.org", "SITE": "https://x.example.org/a?b=c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["TOKEN"]; ok {
		t.Fatalf("an empty generated secret is resolved to %q; the agent generates it", got["TOKEN"])
	}
}

func TestValidateSettingsNamesFieldAndRule(t *testing.T) {
	cases := []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{}, "settings.PASS: required"},
		{map[string]string{"PASS": ""}, "settings.PASS: required"},
		{map[string]string{"NOPE": "1"}, "settings.NOPE: not a setting of demo"},
		{map[string]string{"NAME": "a"}, "settings.NAME: 1 characters, fewer than the minimum 2"},
		{map[string]string{"NAME": "abcdefghi"}, "settings.NAME: 9 characters, more than the maximum 8"},
		{map[string]string{"NAME": "ABC"}, `settings.NAME: "ABC" does not match the pattern [a-z]+`},
		{map[string]string{"NAME": "abc\nX=1"}, "settings.NAME: value contains a line break"},
		{map[string]string{"NAME": "ab\x00c"}, "settings.NAME: value contains a NUL byte"},
		{map[string]string{"NAME": strings.Repeat("a", 100*1024)}, "settings.NAME: value is 102400 bytes, longer than the maximum 4096"},
		{map[string]string{"COUNT": "0"}, "settings.COUNT: 0 is below the minimum 1"},
		{map[string]string{"COUNT": "11"}, "settings.COUNT: 11 is above the maximum 10"},
		{map[string]string{"COUNT": "3.5"}, `settings.COUNT: "3.5" is not a whole number`},
		{map[string]string{"COUNT": "03"}, `settings.COUNT: "03" is not a whole number`},
		{map[string]string{"ON": "yes"}, `settings.ON: "yes" must be true or false`},
		{map[string]string{"MODE": "slow"}, `settings.MODE: "slow" must be one of fast, safe`},
		{map[string]string{"TOKEN": "short"}, "settings.TOKEN: 5 characters, fewer than the minimum 16"},
		{map[string]string{"PASS": "it's"}, "settings.PASS: value contains a single quote"},
		{map[string]string{"MAIL": "Alice <a@example.org>"}, "settings.MAIL: "},
		{map[string]string{"MAIL": "not-an-address"}, `settings.MAIL: "not-an-address" is not an e-mail address`},
		{map[string]string{"SITE": "javascript:alert(1)"}, "settings.SITE: "},
		{map[string]string{"SITE": "https://"}, `is not an http:// or https:// URL`},
		{map[string]string{"PORT": "99999"}, "settings.PORT: 99999 is outside the port range 1-65535"},
		{map[string]string{"PORT": "0"}, "settings.PORT: 0 is outside the port range 1-65535"},
		{map[string]string{"PORT": "http"}, `settings.PORT: "http" is not a port number`},
	}
	for _, c := range cases {
		if _, ok := c.values["PASS"]; !ok && c.want != "settings.PASS: required" {
			c.values["PASS"] = "x"
		}
		_, err := ValidateSettings(demoSettings(), c.values)
		if err == nil || !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateSettings(%.60q) = %v; want Invalid containing %q", c.values, err, c.want)
		}
	}
	// Every failing field is named, in a stable order.
	_, err := ValidateSettings(demoSettings(), map[string]string{"PASS": "x", "COUNT": "99", "ON": "1"})
	if err == nil || err.Error() != `settings.COUNT: 99 is above the maximum 10; settings.ON: "1" must be true or false` {
		t.Fatalf("two errors: %v", err)
	}
}

// TestSecretValuesStayOutOfErrors: a secret that breaks a rule is named,
// its value never quoted.
func TestSecretValuesStayOutOfErrors(t *testing.T) {
	e := demoSettings()
	e.Settings[4].Pattern = "[0-9]+"
	_, err := ValidateSettings(e, map[string]string{"PASS": "x", "TOKEN": "abcdefghijklmnopq-hush"})
	if err == nil || strings.Contains(err.Error(), "hush") || !strings.Contains(err.Error(), "settings.TOKEN: does not match") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateChangesKeepsWhatIsNotGiven(t *testing.T) {
	got, err := ValidateChanges(demoSettings(), map[string]string{"ON": "true"})
	if err != nil || len(got) != 1 || got["ON"] != "true" {
		t.Fatalf("ValidateChanges = %v, %v", got, err)
	}
	if _, err := ValidateChanges(demoSettings(), map[string]string{"TOKEN": ""}); err == nil || !strings.Contains(err.Error(), "settings.TOKEN: a generated secret cannot be emptied") {
		t.Fatalf("emptying a generated secret: %v", err)
	}
	if _, err := ValidateChanges(demoSettings(), map[string]string{"PASS": ""}); err == nil || !strings.Contains(err.Error(), "settings.PASS: required") {
		t.Fatalf("emptying a required setting: %v", err)
	}
}
