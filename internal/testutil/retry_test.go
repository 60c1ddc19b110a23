package testutil

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Fatalf said instead of ending
// the test.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	panic(r) // Fatalf does not return
}

func run(r *recorder, f func()) {
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	f()
}

func TestUntilReportsTheLastFailure(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	run(r, func() {
		Until(r, 50*time.Millisecond, "the answer", func() error {
			n++
			return fmt.Errorf("attempt %d: status 503", n)
		})
	})
	if !strings.Contains(r.msg, "waiting for the answer") || !strings.Contains(r.msg, fmt.Sprintf("attempt %d: status 503", n)) || n < 2 {
		t.Fatalf("message %q after %d attempts", r.msg, n)
	}
}

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	run(r, func() {
		Until(r, time.Second, "three tries", func() error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	})
	if r.msg != "" || n != 3 {
		t.Fatalf("message %q after %d attempts", r.msg, n)
	}
	run(r, func() { UntilTrue(r, 20*time.Millisecond, "never", func() bool { return false }) })
	if !strings.Contains(r.msg, "never: the condition still does not hold") {
		t.Fatalf("message %q", r.msg)
	}
}
