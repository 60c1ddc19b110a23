package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatalogSourcesCommandLine: catalog sources add/list/show/remove
// manage a directory source; catalog list filters with --search,
// --category and --source; catalog categories counts; catalog show reads
// SOURCE/ID; -o json is the API's answer.
func TestCatalogSourcesCommandLine(t *testing.T) {
	ts, token := startServer(t)
	dir := t.TempDir()
	for _, name := range []string{"gitea", "vaultwarden"} {
		b, err := os.ReadFile("../../../internal/catalog/starter/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".yaml"), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("id: broken\n"), 0o644)

	code, out, errs := ctl(t, ts, token, "catalog", "sources", "add", "mine", "dir://"+dir)
	if code != 0 || !strings.Contains(out, "entries 2, rejected 1") || !strings.Contains(out, "broken.yaml") {
		t.Fatalf("sources add: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := ctl(t, ts, token, "catalog", "sources", "add", "bad", "/not/a/url"); code != 1 || !strings.Contains(errs, "url:") {
		t.Fatalf("sources add with a bad URL: %d %s", code, errs)
	}
	code, out, _ = ctl(t, ts, token, "catalog", "sources", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "builtin") || !strings.HasPrefix(lines[2], "mine") {
		t.Fatalf("sources list: %d\n%s", code, out)
	}
	code, out, _ = ctl(t, ts, token, "catalog", "sources", "show", "mine", "-o", "json")
	var src struct {
		Entries  int
		Problems []struct{ File, Field, Reason string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &src) != nil || src.Entries != 2 || len(src.Problems) < 2 {
		t.Fatalf("sources show -o json: %d\n%s", code, out)
	}

	code, out, _ = ctl(t, ts, token, "catalog", "list", "--source", "mine")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "mine/gitea") {
		t.Fatalf("catalog list --source: %d\n%s", code, out)
	}
	code, out, _ = ctl(t, ts, token, "catalog", "list", "--search", "password", "--category", "security")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "vaultwarden") || !strings.HasPrefix(lines[2], "mine/vaultwarden") {
		t.Fatalf("catalog list --search --category: %d\n%s", code, out)
	}
	code, out, _ = ctl(t, ts, token, "catalog", "categories", "--source", "mine")
	if code != 0 || !strings.Contains(out, "development") || !strings.Contains(out, "security") {
		t.Fatalf("catalog categories: %d\n%s", code, out)
	}
	if code, out, _ = ctl(t, ts, token, "catalog", "show", "mine/vaultwarden"); code != 0 || !strings.Contains(out, "ADMIN_TOKEN") {
		t.Fatalf("catalog show SOURCE/ID: %d\n%s", code, out)
	}
	// Completion of SOURCE/... asks for that source's entries: a store
	// larger than one page completes too.
	big := t.TempDir()
	gitea, _ := os.ReadFile("../../../internal/catalog/starter/gitea.yaml")
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("g%03d", i)
		os.WriteFile(filepath.Join(big, id+".yaml"), []byte(strings.Replace(string(gitea), "id: gitea", "id: "+id, 1)), 0o644)
	}
	if code, _, errs := ctl(t, ts, token, "catalog", "sources", "add", "big", "dir://"+big); code != 0 {
		t.Fatalf("sources add big: %d %s", code, errs)
	}
	if code, out, _ := ctl(t, ts, token, "__complete", "app", "deploy", "big/g09"); code != 0 || !strings.Contains(out, "big/g099\t") || strings.Contains(out, "vaultwarden") {
		t.Fatalf("completion of big/g09: %d\n%s", code, out)
	}
	if code, _, errs := ctl(t, ts, token, "catalog", "sources", "remove", "mine"); code != 0 {
		t.Fatalf("sources remove: %d %s", code, errs)
	}
	if code, _, errs := ctl(t, ts, token, "catalog", "show", "mine/vaultwarden"); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("an entry of a removed source: %d %s", code, errs)
	}
}
