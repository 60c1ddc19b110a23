// Package testutil holds what tests of several packages share: waiting on
// a condition with a deadline, reporting why it did not hold.
package testutil

import (
	"testing"
	"time"
)

// Until calls f until it returns nil or d has passed. On timeout the test
// fails with what it waited for and f's last error, which says why the
// condition did not hold (a status, a count, the last answer).
//
//	testutil.Until(t, 10*time.Second, "pve2 ready", func() error {
//		if n := nodes()["pve2"]; n.Status != "ready" {
//			return fmt.Errorf("status %q", n.Status)
//		}
//		return nil
//	})
func Until(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// UntilTrue is Until for a condition with nothing to say about itself.
func UntilTrue(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, d, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

type notYet struct{}

func (notYet) Error() string { return "the condition still does not hold" }

var errNotYet error = notYet{}
