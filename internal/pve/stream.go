package pve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxStreamLine bounds one line of ExecStream's output; the rest of a
// longer line is dropped.
const MaxStreamLine = 16 << 10

// ExecStream runs `pct exec` with its standard output on a pipe, read line
// by line, in its own process group: cancelling ctx (or an error from
// line) kills the whole group, so nothing the command started lives on.
// Unlike run, the output never touches the disk: it can hold secrets (a
// read of an app's .env).
func (l *Local) ExecStream(ctx context.Context, vmid int, argv []string, line func(string) error) (ExecResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append([]string{"exec", id(vmid), "--"}, argv...)
	prog, cargs, env := l.bin("pct"), args, []string(nil)
	if l.opt.ToolUmask {
		var err error
		if prog, cargs, env, err = toolCommand(prog, args); err != nil {
			return ExecResult{}, err
		}
	}
	cmd := exec.CommandContext(ctx, prog, cargs...)
	cmd.Env = append(append(os.Environ(), l.opt.Env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	errs := &tailBuffer{max: 4096}
	cmd.Stderr = errs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ExecResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return ExecResult{}, fmt.Errorf("run pct: %w", err)
	}
	lineErr := readLines(out, line)
	if lineErr != nil {
		cancel() // the reader is done: stop the command
	}
	waitErr := cmd.Wait()
	res := ExecResult{Stderr: errs.String()}
	var exitErr *exec.ExitError
	switch {
	case lineErr != nil && !errors.Is(lineErr, errPipe):
		return res, lineErr
	case ctx.Err() != nil:
		return res, &Error{Kind: ErrTimeout, Text: fmt.Sprintf("pct exec %d: stopped before the command ended", vmid)}
	case waitErr == nil:
		return res, nil
	case errors.As(waitErr, &exitErr):
		res.Code = exitErr.ExitCode()
		if res.Code == 255 {
			if e, ok := Classify(res.Stderr).(*Error); ok && e.Kind != nil {
				return ExecResult{}, e
			}
		}
		return res, nil
	default:
		return res, fmt.Errorf("run pct: %w", waitErr)
	}
}

// errPipe is a read failure of the command's output (it was killed).
var errPipe = errors.New("output pipe")

// readLines calls line for each line of r until r ends or line fails.
func readLines(r io.Reader, line func(string) error) error {
	br := bufio.NewReaderSize(r, 4096)
	var cur []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 && !cut {
			cur = append(cur, chunk...)
			if len(cur) > MaxStreamLine {
				cur, cut = cur[:MaxStreamLine], true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(cur) > 0 || err == nil {
			if lerr := line(strings.TrimRight(string(cur), "\r\n")); lerr != nil {
				return lerr
			}
		}
		cur, cut = cur[:0], false
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errPipe, err)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
