package pvesim

import (
	"testing"
)

// TestHangFaultMarksItsWorkersHung: a worker of a type the hang fault
// names is recorded running and hung, and clearing the fault does not
// release it; a worker started after the clear is not hung. (Who ends a
// hung worker is whoever kills its process.)
func TestHangFaultMarksItsWorkersHung(t *testing.T) {
	s := newSim(t)
	s.withTemplate()
	for _, id := range []string{"100", "101"} {
		s.ok("pct", "create", id, "local:vztmpl/"+debian, "--hostname", "ct"+id, "--rootfs", "local-lvm:4")
	}
	hung, release := make(chan struct{}), make(chan struct{})
	saved := hangSelf
	hangSelf = func() { hung <- struct{}{}; <-release }
	defer func() { hangSelf = saved }()
	s.ok("pvesim", "fault", "hang=vzstart")
	ended := make(chan int, 1)
	go func() { code, _, _ := s.run("pct", "start", "100"); ended <- code }()
	<-hung
	s.ok("pvesim", "fault", "clear")
	s.ok("pct", "start", "101")
	st, err := Open(s.dir, "pve")
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]Task{}
	if err := st.View(func(n *Node) error {
		for _, tk := range n.Tasks {
			if tk.Type == "vzstart" {
				starts[tk.ID] = tk
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if tk := starts["100"]; tk.Status != "running" || !tk.Hung {
		t.Fatalf("the start under the hang fault: %+v", tk)
	}
	if tk := starts["101"]; tk.Status != "stopped" || tk.Exit != "OK" || tk.Hung {
		t.Fatalf("the start after the clear: %+v", tk)
	}
	close(release)
	if code := <-ended; code == 0 {
		t.Fatalf("a released hung worker ended OK")
	}
}
