package api

import (
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIMatchesRoutes fails when the route table and
// docs/openapi.yaml disagree: a route missing from the document, an
// operation the router does not have, a different access level, or a
// reference to a schema that does not exist.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]map[string]any `yaml:"paths"`
		Components struct {
			Schemas   map[string]any `yaml:"schemas"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			access, _ := op["x-proximity-access"].(string)
			documented[strings.ToUpper(method)+" "+path] = access
		}
	}
	names := map[access]string{public: "public", anyUser: "user", adminOnly: "admin", selfOrAdmin: "self"}
	a := &API{}
	var missing []string
	for _, rt := range a.table() {
		key := rt.method + " " + rt.pattern
		got, ok := documented[key]
		switch {
		case !ok:
			missing = append(missing, key)
		case got != names[rt.access]:
			t.Errorf("%s: the document says access %q, the router %q", key, got, names[rt.access])
		}
		delete(documented, key)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is not in docs/openapi.yaml", m)
	}
	for key := range documented {
		t.Errorf("docs/openapi.yaml has %s, which the router does not", key)
	}
	for _, ref := range strings.Split(string(raw), "$ref: '")[1:] {
		target := ref[:strings.Index(ref, "'")]
		name := target[strings.LastIndex(target, "/")+1:]
		var ok bool
		switch {
		case strings.HasPrefix(target, "#/components/schemas/"):
			_, ok = doc.Components.Schemas[name]
		case strings.HasPrefix(target, "#/components/responses/"):
			_, ok = doc.Components.Responses[name]
		}
		if !ok {
			t.Errorf("unresolved reference %s", target)
		}
	}
}
