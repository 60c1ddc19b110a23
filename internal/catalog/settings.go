package catalog

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/problem"
)

// Setting types.
const (
	TypeString = "string"
	TypeInt    = "int"
	TypeBool   = "bool"
	TypeEnum   = "enum"
	TypeSecret = "secret"
	TypeEmail  = "email"
	TypeURL    = "url"
	TypePort   = "port"
)

var settingTypes = map[string]bool{TypeString: true, TypeInt: true, TypeBool: true, TypeEnum: true,
	TypeSecret: true, TypeEmail: true, TypeURL: true, TypePort: true}

// Setting is a variable of the Compose stack that the person deploying the
// app may set. Its value reaches the container's .env file.
//
// Min and Max bound an int's or a port's value, and a string's or a
// secret's length in characters. Pattern (RE2 syntax) must match a string,
// secret, email or url value as a whole. Options are an enum's values.
// Generate, for a secret only, is the length of a value the node's agent
// generates when the person gives none; such a value never leaves the node.
type Setting struct {
	Name        string   `yaml:"name" json:"name"`
	Type        string   `yaml:"type" json:"type"`
	Label       string   `yaml:"label" json:"label"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Default     string   `yaml:"default" json:"default,omitempty"`
	Required    bool     `yaml:"required" json:"required"`
	Min         *int64   `yaml:"min" json:"min,omitempty"`
	Max         *int64   `yaml:"max" json:"max,omitempty"`
	Pattern     string   `yaml:"pattern" json:"pattern,omitempty"`
	Options     []string `yaml:"options" json:"options,omitempty"`
	Generate    int      `yaml:"generate" json:"generate,omitempty"`
}

// Secret reports whether the setting holds a secret.
func (s Setting) Secret() bool { return s.Type == TypeSecret }

// validateSettings checks the declarations; bad reports each problem.
func (e *Entry) validateSettings(bad func(field, format string, args ...any)) map[string]bool {
	env := map[string]bool{}
	for _, v := range e.Environment {
		env[v.Name] = true
	}
	seen := map[string]bool{}
	for i, s := range e.Settings {
		f := fmt.Sprintf("settings[%d]", i)
		if !envNameRE.MatchString(s.Name) {
			bad(f+".name", "%q must be an upper-case variable name", s.Name)
		}
		if seen[s.Name] {
			bad(f+".name", "%q is declared twice", s.Name)
		}
		if env[s.Name] {
			bad(f+".name", "%q is also in environment", s.Name)
		}
		seen[s.Name] = true
		if !settingTypes[s.Type] {
			bad(f+".type", "%q must be one of string, int, bool, enum, secret, email, url, port", s.Type)
			continue
		}
		if strings.TrimSpace(s.Label) == "" {
			bad(f+".label", "required")
		}
		if s.Generate != 0 && s.Type != TypeSecret {
			bad(f+".generate", "only a secret is generated")
		} else if s.Generate != 0 && (s.Generate < 16 || s.Generate > 128) {
			bad(f+".generate", "%d outside 16-128", s.Generate)
		}
		if s.Type == TypeSecret && s.Default != "" {
			bad(f+".default", "a secret has no default: generate it (generate: 32) or require it")
		}
		if s.Type != TypeSecret && secretNameRE.MatchString(s.Name) {
			bad(f+".type", "%s looks like a secret: declare it type secret", s.Name)
		}
		if s.Type == TypeEnum && len(s.Options) == 0 {
			bad(f+".options", "an enum needs options")
		}
		if s.Type != TypeEnum && len(s.Options) > 0 {
			bad(f+".options", "only an enum has options")
		}
		opts := map[string]bool{}
		for j, o := range s.Options {
			if opts[o] {
				bad(fmt.Sprintf("%s.options[%d]", f, j), "%q is listed twice", o)
			}
			opts[o] = true
			if err := dotenv.CheckValue("X", o); err != nil || o == "" {
				bad(fmt.Sprintf("%s.options[%d]", f, j), "%q cannot be written to a .env file", o)
			}
		}
		switch s.Type {
		case TypeInt, TypePort, TypeString, TypeSecret:
		default:
			if s.Min != nil || s.Max != nil {
				bad(f, "min and max apply to int, port, string and secret only")
			}
		}
		if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
			bad(f+".min", "%d is above max %d", *s.Min, *s.Max)
		}
		if s.Type == TypePort {
			for name, v := range map[string]*int64{"min": s.Min, "max": s.Max} {
				if v != nil && (*v < 1 || *v > 65535) {
					bad(f+"."+name, "%d outside 1-65535", *v)
				}
			}
		}
		if (s.Type == TypeString || s.Type == TypeSecret) && s.Min != nil && *s.Min < 0 {
			bad(f+".min", "a length cannot be negative")
		}
		if s.Pattern != "" {
			switch s.Type {
			case TypeString, TypeSecret, TypeEmail, TypeURL:
				if len(s.Pattern) > 512 {
					bad(f+".pattern", "longer than 512 characters")
				} else if _, err := regexp.Compile(s.Pattern); err != nil {
					bad(f+".pattern", "does not compile: %v", err)
				}
			default:
				bad(f+".pattern", "a pattern applies to string, secret, email and url only")
			}
		}
		if s.Default != "" {
			if rule := s.check(s.Default); rule != "" {
				bad(f+".default", "%s", rule)
			}
		}
	}
	return seen
}

// check returns the rule value breaks, or "".
func (s Setting) check(v string) string {
	if err := dotenv.CheckValue(s.Name, v); err != nil {
		return strings.TrimPrefix(err.Error(), s.Name+": ")
	}
	switch s.Type {
	case TypeInt, TypePort:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v {
			if s.Type == TypePort {
				return fmt.Sprintf("%q is not a port number", v)
			}
			return fmt.Sprintf("%q is not a whole number", v)
		}
		lo, hi := s.Min, s.Max
		if s.Type == TypePort {
			if n < 1 || n > 65535 {
				return fmt.Sprintf("%d is outside the port range 1-65535", n)
			}
		}
		if lo != nil && n < *lo {
			return fmt.Sprintf("%d is below the minimum %d", n, *lo)
		}
		if hi != nil && n > *hi {
			return fmt.Sprintf("%d is above the maximum %d", n, *hi)
		}
		return ""
	case TypeBool:
		if v != "true" && v != "false" {
			return fmt.Sprintf("%q must be true or false", v)
		}
		return ""
	case TypeEnum:
		for _, o := range s.Options {
			if v == o {
				return ""
			}
		}
		return fmt.Sprintf("%q must be one of %s", v, strings.Join(s.Options, ", "))
	case TypeEmail:
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v {
			return fmt.Sprintf("%q is not an e-mail address", v)
		}
	case TypeURL:
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("%q is not an http:// or https:// URL", v)
		}
	case TypeString, TypeSecret:
		n := int64(utf8.RuneCountInString(v))
		if s.Min != nil && n < *s.Min {
			return fmt.Sprintf("%d characters, fewer than the minimum %d", n, *s.Min)
		}
		if s.Max != nil && n > *s.Max {
			return fmt.Sprintf("%d characters, more than the maximum %d", n, *s.Max)
		}
	}
	if s.Pattern != "" {
		re, err := regexp.Compile(`^(?:` + s.Pattern + `)$`)
		if err != nil || !re.MatchString(v) {
			if s.Type == TypeSecret {
				return fmt.Sprintf("does not match the pattern %s", s.Pattern)
			}
			return fmt.Sprintf("%q does not match the pattern %s", v, s.Pattern)
		}
	}
	return ""
}

// Setting returns the entry's setting called name.
func (e *Entry) Setting(name string) (Setting, bool) {
	for _, s := range e.Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// ValidateSettings checks the values a person gives for e's settings and
// returns them resolved: every given value, and the default of every
// setting not given. A secret with generate and no value is left out (the
// node's agent generates it). The error is a problem.Invalid naming each
// field and the rule it breaks ("settings.PORT: 99999 is above the maximum
// 65535"); an unknown name is refused. Secret values are never quoted in
// errors.
func ValidateSettings(e Entry, values map[string]string) (map[string]string, error) {
	return validateValues(e, values, true)
}

// ValidateChanges checks values that change some of an app's settings:
// the same rules as ValidateSettings, but a setting left out is not filled
// or required (it keeps its current value).
func ValidateChanges(e Entry, values map[string]string) (map[string]string, error) {
	return validateValues(e, values, false)
}

func validateValues(e Entry, values map[string]string, complete bool) (map[string]string, error) {
	var errs []string
	out := map[string]string{}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s, ok := e.Setting(k)
		if !ok {
			errs = append(errs, fmt.Sprintf("settings.%.64s: not a setting of %s", k, e.ID))
			continue
		}
		v := values[k]
		if v == "" && s.Secret() && s.Generate > 0 {
			if !complete {
				errs = append(errs, fmt.Sprintf("settings.%s: a generated secret cannot be emptied; give a new value", k))
			}
			continue // generated on the node
		}
		if v == "" && !s.Required {
			if complete && s.Default != "" {
				v = s.Default
			} else {
				out[k] = ""
				continue
			}
		}
		if v == "" {
			errs = append(errs, fmt.Sprintf("settings.%s: required", k))
			continue
		}
		if rule := s.check(v); rule != "" {
			errs = append(errs, fmt.Sprintf("settings.%s: %s", k, rule))
			continue
		}
		out[k] = v
	}
	if complete {
		for _, s := range e.Settings {
			if _, given := values[s.Name]; given {
				continue
			}
			switch {
			case s.Default != "":
				out[s.Name] = s.Default
			case s.Required && !(s.Secret() && s.Generate > 0):
				errs = append(errs, fmt.Sprintf("settings.%s: required", s.Name))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, problem.E(problem.Invalid, "%s", strings.Join(errs, "; "))
	}
	return out, nil
}
