package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func flags() (*pflag.FlagSet, *string, *string, *[]string, *int) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	node := fs.String("node-id", "", "")
	addr := fs.String("http-addr", "127.0.0.1:7070", "")
	join := fs.StringArray("join", nil, "")
	n := fs.Int("bootstrap-expect", 0, "")
	fs.String("config", "", "")
	return fs, node, addr, join, n
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("node-id: from-file\nhttp-addr: 10.0.0.1:7070\njoin: [a:1, b:2]\nbootstrap-expect: 3\n"), 0o600)
	fs, node, addr, join, n := flags()
	if err := fs.Parse([]string{"--node-id", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"P_HTTP_ADDR": "10.0.0.2:7070"}
	if err := Apply(fs, file, "P", func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *node != "from-flag" || *addr != "10.0.0.2:7070" || strings.Join(*join, ",") != "a:1,b:2" || *n != 3 {
		t.Fatalf("got node %q addr %q join %v n %d", *node, *addr, *join, *n)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown.yaml": "node-id: x\nnodeid: y\n",
		"type.yaml":    "bootstrap-expect: three\n",
		"shape.yaml":   "- a\n- b\n",
		"config.yaml":  "config: /etc/x\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		fs, _, _, _, _ := flags()
		err := Apply(fs, p, "P", func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v (want an error naming the file)", name, err)
		}
	}
	fs, _, _, _, _ := flags()
	if err := Apply(fs, filepath.Join(dir, "missing.yaml"), "P", func(string) string { return "" }); err == nil {
		t.Error("a missing file is not an error")
	}
}

func TestUnderscoreKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("node_id: from-file\nbootstrap_expect: 3\n"), 0o600)
	fs, node, _, _, n := flags()
	if err := Apply(fs, file, "P", func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if *node != "from-file" || *n != 3 {
		t.Fatalf("got node %q n %d", *node, *n)
	}
	os.WriteFile(file, []byte("node-id: a\nnode_id: b\n"), 0o600)
	fs, _, _, _, _ = flags()
	if err := Apply(fs, file, "P", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "again") {
		t.Errorf("a setting spelled both ways: %v", err)
	}
}
