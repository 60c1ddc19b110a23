// Package config fills a command's flags from its configuration file and
// the environment. Every flag is a setting of the same name: a flag given
// on the command line wins, then the environment variable PREFIX_NAME
// (upper case, dashes as underscores), then the YAML file, then the
// flag's default. In the file, a key may spell the name's dashes as
// underscores (allow_privileged for allow-privileged). Unknown keys in
// the file are errors that name the file and the key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// EnvName is the environment variable for flag name under prefix.
func EnvName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Apply sets every flag not given on the command line from the
// environment or from file (skipped when empty). The flag named "config"
// is not a setting.
func Apply(fs *pflag.FlagSet, file, prefix string, getenv func(string) string) error {
	values := map[string][]string{}
	if file != "" {
		var err error
		if values, err = read(fs, file); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" || f.Name == "version" {
			return
		}
		var vals []string
		var from string
		if v := getenv(EnvName(prefix, f.Name)); v != "" {
			from = EnvName(prefix, f.Name)
			vals = []string{v}
			if f.Value.Type() == "stringArray" || f.Value.Type() == "stringSlice" {
				vals = strings.Split(v, ",")
			}
		} else if v, ok := values[f.Name]; ok {
			from, vals = file+": "+f.Name, v
		}
		for _, v := range vals {
			if err := fs.Set(f.Name, strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", from, err))
			}
		}
	})
	return errors.Join(errs...)
}

// read parses a YAML mapping of flag names to scalars or lists.
func read(fs *pflag.FlagSet, file string) (map[string][]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	out := map[string][]string{}
	if len(bytes.TrimSpace(b)) == 0 {
		return out, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if len(doc.Content) == 0 {
		return out, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping of setting names to values", file)
	}
	var known []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != "help" && f.Name != "version" {
			known = append(known, f.Name)
		}
	})
	sort.Strings(known)
	spelled := map[string]string{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		f := fs.Lookup(k.Value)
		if f == nil {
			// allow_privileged is the setting allow-privileged.
			f = fs.Lookup(strings.ReplaceAll(k.Value, "_", "-"))
		}
		if f == nil || f.Name == "config" {
			return nil, fmt.Errorf("%s:%d: %q is not a setting (settings: %s)", file, k.Line, k.Value, strings.Join(known, ", "))
		}
		if s, ok := spelled[f.Name]; ok && s != k.Value {
			return nil, fmt.Errorf("%s:%d: %q is %q again", file, k.Line, k.Value, s)
		}
		spelled[f.Name] = k.Value
		switch v.Kind {
		case yaml.ScalarNode:
			out[f.Name] = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%s:%d: %s: list items must be plain values", file, item.Line, k.Value)
				}
				out[f.Name] = append(out[f.Name], item.Value)
			}
		default:
			return nil, fmt.Errorf("%s:%d: %s: want a value or a list", file, v.Line, k.Value)
		}
	}
	return out, nil
}
