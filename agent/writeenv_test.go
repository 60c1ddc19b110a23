package agent

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/dotenv"
	"github.com/proximity-ve/proximity/internal/pve"
	"github.com/proximity-ve/proximity/internal/taskspec"
	pb "github.com/proximity-ve/proximity/proto/agentpb"
)

// fileNode is a container's files, as test -f, cat and push see them.
type fileNode struct {
	pve.Runtime
	files map[string]string
}

func (n *fileNode) Exec(_ context.Context, _ int, argv ...string) (pve.ExecResult, error) {
	body, ok := n.files[argv[len(argv)-1]]
	switch {
	case argv[0] == "test" && ok, argv[0] == "cat" && ok:
		return pve.ExecResult{Stdout: body}, nil
	case argv[0] == "test", argv[0] == "cat":
		return pve.ExecResult{Code: 1}, nil
	}
	return pve.ExecResult{Code: 127}, nil
}

func (n *fileNode) Push(_ context.Context, _ int, content []byte, path, _ string) error {
	n.files[path] = string(content)
	return nil
}

func envAgent(t *testing.T, files map[string]string) (*Agent, *fileNode) {
	t.Helper()
	n := &fileNode{files: files}
	a, err := New(Config{Node: "pve1", DataDir: t.TempDir(), Runtime: n, Coordinators: []string{"127.0.0.1:1"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, n
}

// TestEnvUpdateKeepsGeneratedSecretsAndRestoresOnlyItsOwnCopy protects a
// reconfigure's .env: an update keeps every value it does not change
// (generated secrets included) and saves the previous file once per
// operation, so a redelivered update does not overwrite that copy; a
// restore puts back only a copy its own operation saved.
func TestEnvUpdateKeepsGeneratedSecretsAndRestoresOnlyItsOwnCopy(t *testing.T) {
	const path = AppDir + "/.env"
	a, n := envAgent(t, map[string]string{path: "A='1'\nTOKEN='generated-before'\n"})
	ctx, task := context.Background(), &pb.Task{Id: "t", Fence: 1}
	read := func(p string) map[string]string {
		t.Helper()
		m, err := dotenv.Parse([]byte(n.files[p]))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return m
	}
	update := taskspec.EnvSpec{Path: path, Mode: taskspec.EnvUpdate, Op: "op1", Values: map[string]string{"A": "2"},
		Generate: map[string]int{"TOKEN": 32, "NEW": 20}}
	for range 2 { // a redelivery changes nothing
		if err := a.exec.writeEnv(ctx, task, 100, update); err != nil {
			t.Fatal(err)
		}
	}
	now := read(path)
	if now["A"] != "2" || now["TOKEN"] != "generated-before" || len(now["NEW"]) != 20 || len(now) != 3 {
		t.Fatalf(".env after update: %q", now)
	}
	if prev := read(path + ".prev"); prev["A"] != "1" || !strings.HasPrefix(n.files[path+".prev"], "# proximity-op op1\n") {
		t.Fatalf(".env.prev after a redelivered update: %q", n.files[path+".prev"])
	}

	// Another operation's restore finds no copy of its own: nothing changes.
	if err := a.exec.writeEnv(ctx, task, 100, taskspec.EnvSpec{Path: path, Mode: taskspec.EnvRestore, Op: "op2"}); err != nil {
		t.Fatal(err)
	}
	if read(path)["A"] != "2" {
		t.Fatalf("a restore of another operation changed .env: %q", n.files[path])
	}
	if err := a.exec.writeEnv(ctx, task, 100, taskspec.EnvSpec{Path: path, Mode: taskspec.EnvRestore, Op: "op1"}); err != nil {
		t.Fatal(err)
	}
	if back := read(path); back["A"] != "1" || back["TOKEN"] != "generated-before" || len(back) != 2 {
		t.Fatalf(".env after restore: %q", back)
	}

	// A deploy's write keeps an existing file.
	if err := a.exec.writeEnv(ctx, task, 100, taskspec.EnvSpec{Path: path, Values: map[string]string{"A": "3"}}); err != nil || read(path)["A"] != "1" {
		t.Fatalf("a create overwrote the existing .env: %v %q", err, n.files[path])
	}
	// A value that would add a line is refused before anything is written.
	delete(n.files, path)
	if err := a.exec.writeEnv(ctx, task, 100, taskspec.EnvSpec{Path: path, Values: map[string]string{"TZ": "a\nEVIL=1"}}); err == nil || n.files[path] != "" {
		t.Fatalf("a value with a newline: %v, wrote %q", err, n.files[path])
	}
}
