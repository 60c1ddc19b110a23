package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/testutil"
)

// previousRelease is the commit whose binary the rolling-upgrade test
// upgrades from: the tree at the end of the previous issue (0.4.0 before
// servers announced a protocol). Move it forward when a release is tagged;
// previousRaftKnobs must then still apply to its main.go, or go once the
// release has the --raft-* settings itself.
const previousRelease = "b04dd46"

// previousRaftKnobs makes the previous release read the --raft-* settings
// of this version (Raft's snapshot threshold, interval and trailing logs)
// from their environment variables, which it otherwise lacks: without them
// it writes a snapshot only after 8192 entries and 2 to 4 minutes, too
// late for a test to see a snapshot cross versions. It changes when
// snapshots are taken and how many log entries are kept, nothing of what a
// snapshot holds or how the state machine writes and restores it; without
// the variables the binary is the release's.
var previousRaftKnobs = struct{ old, new, file string }{
	old: "cfg.Timing = cluster.DefaultTiming()",
	new: "cfg.Timing = raftKnobs(cluster.DefaultTiming())",
	file: `package main

import (
	"os"
	"strconv"
	"time"

	"github.com/proximity-ve/proximity/coordinator/cluster"
)

func raftKnobs(t cluster.Timing) cluster.Timing {
	if v, err := strconv.ParseUint(os.Getenv("PROXIMITY_COORDINATOR_RAFT_SNAPSHOT_THRESHOLD"), 10, 64); err == nil {
		t.SnapshotThreshold = v
	}
	if v, err := time.ParseDuration(os.Getenv("PROXIMITY_COORDINATOR_RAFT_SNAPSHOT_INTERVAL")); err == nil {
		t.SnapshotInterval = v
	}
	if v, err := strconv.ParseUint(os.Getenv("PROXIMITY_COORDINATOR_RAFT_TRAILING_LOGS"), 10, 64); err == nil {
		t.TrailingLogs = v
	}
	return t
}
`,
}

// buildPrevious builds proximity-coordinator at previousRelease, with
// previousRaftKnobs, from a detached worktree of this repository. The
// binary is kept in the user's cache directory under the commit and the Go
// version, so only the first run pays for the build; -trimpath lets the
// worktree's packages hit Go's build cache wherever the worktree is. It
// skips the test when the commit is not available (a shallow clone, no
// git).
func buildPrevious(t *testing.T) string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("no git to build the previous release (%s) from: %v", previousRelease, err)
	}
	out, err := exec.Command(git, "rev-parse", "--verify", "--quiet", previousRelease+"^{commit}").Output()
	if err != nil {
		t.Skipf("commit %s of the previous release is not in this clone (shallow?): %v", previousRelease, err)
	}
	full := strings.TrimSpace(string(out))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "proximity", "upgrade-test", full+"-raft-knobs-"+runtime.Version())
	bin := filepath.Join(dir, "proximity-coordinator")
	if _, err := os.Stat(bin); err == nil {
		t.Logf("previous release %s: cached binary %s", previousRelease, bin)
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wt := filepath.Join(t.TempDir(), "previous")
	start := time.Now()
	if out, err := exec.Command(git, "worktree", "add", "--detach", wt, full).CombinedOutput(); err != nil {
		t.Skipf("git worktree add %s: %v\n%s", previousRelease, err, out)
	}
	defer func() {
		if out, err := exec.Command(git, "worktree", "remove", "--force", wt).CombinedOutput(); err != nil {
			t.Logf("git worktree remove: %v\n%s", err, out)
		}
	}()
	cmdDir := filepath.Join(wt, "coordinator", "cmd", "proximity-coordinator")
	mainGo, err := os.ReadFile(filepath.Join(cmdDir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(mainGo), previousRaftKnobs.old); n != 1 {
		t.Fatalf("the previous release's main.go has %q %d times, not once: update previousRaftKnobs", previousRaftKnobs.old, n)
	}
	mainGo = []byte(strings.Replace(string(mainGo), previousRaftKnobs.old, previousRaftKnobs.new, 1))
	if err := os.WriteFile(filepath.Join(cmdDir, "main.go"), mainGo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cmdDir, "raft_knobs.go"), []byte(previousRaftKnobs.file), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", tmp, "./coordinator/cmd/proximity-coordinator")
	build.Dir = wt
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release %s: %v\n%s", previousRelease, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("previous release %s built in %s", previousRelease, time.Since(start).Round(time.Millisecond))
	return bin
}

// buildBoth returns the previous release's binary and this version's.
func buildBoth(t *testing.T) (oldBin, newBin string) {
	t.Helper()
	start := time.Now()
	oldBin = buildPrevious(t)
	newBin = buildThis(t)
	t.Logf("binaries ready in %s", time.Since(start).Round(time.Millisecond))
	return oldBin, newBin
}

// TestRollingUpgrade runs three servers of the previous release with
// --bootstrap-expect 3, reserves through them without pause, and replaces
// one server at a time (SIGTERM, then this version's binary on the same
// data directory) while the reservations go on. Every acknowledged
// reservation must be listed once by every server, nothing unacknowledged
// may appear from nowhere, the upgraded servers must see the old ones at
// the base protocol and each other at this one, and the three servers must
// end with the same state digest at the same index. Raft's snapshot
// settings are the defaults, so the versions meet only in the log (see
// TestRollingUpgradeSnapshots).
func TestRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs real processes")
	}
	start := time.Now()
	oldBin, newBin := buildBoth(t)
	s := newServers(t, oldBin)
	s.start(oldBin, 10*time.Second)
	for i := range 3 {
		s.healthy(i, 60*time.Second)
	}
	t.Logf("previous release's cluster formed at %s", time.Since(start).Round(time.Millisecond))

	l := s.load("up", 2)
	l.waitMore(t, 20)
	for i := range 3 {
		s.stop(i)
		l.waitMore(t, 5) // the two others go on while it is down
		s.launch(i, newBin)
		// It catches up with what another server has committed (as
		// docs/operations.md says to wait for before the next).
		in := s.caughtUp(i, (i+1)%3, 60*time.Second)
		// The upgraded server hears the others announce: the old ones
		// announce no protocol (the base), the upgraded ones this one.
		testutil.Until(t, 20*time.Second, fmt.Sprintf("c%d to see the upgraded members at protocol 2, the others at 1", i+1), func() error {
			for _, m := range in.Members {
				j, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "c"))
				p := 1 // fsm.BaseProtocol
				if j-1 <= i {
					p = 2 // fsm.ProtocolVersion
				}
				if m.Protocol != p {
					in = s.healthy(i, 10*time.Second)
					return fmt.Errorf("members %+v", in.Members)
				}
			}
			return nil
		})
		l.waitMore(t, 50) // mixed versions under load
		t.Logf("c%d upgraded at %s; %d reservations acknowledged", i+1, time.Since(start).Round(time.Millisecond), l.count())
	}
	l.end()

	// Every server lists exactly what was acknowledged, plus at most
	// requests that were tried and not yet answered when the load stopped.
	for i := range 3 {
		l.check(t, s, i, l.ackedNow())
	}
	// The three servers end with the same state at the same index.
	s.sameDigest(30 * time.Second)
	t.Logf("%d reservations acknowledged, %d attempts refused or failed during the upgrade; %s in all",
		l.count(), l.failures, time.Since(start).Round(time.Millisecond))
}

// Raft's snapshot settings for TestRollingUpgradeSnapshots, the smallest
// this version accepts: every server writes a snapshot each second or two
// under the test's load and keeps 16 entries before it, so a server down
// for a moment is sent a snapshot, not the log.
const (
	snapThreshold = 16
	snapTrailing  = 16
)

// TestRollingUpgradeSnapshots is the rolling upgrade with the state
// crossing versions as Raft snapshots, not only as log entries: both
// versions run with --raft-snapshot-threshold and --raft-trailing-logs
// of 16 and --raft-snapshot-interval 1s (the previous release through
// previousRaftKnobs). Under the reservation load:
//
//  1. a follower is stopped, and the leader (of the previous release, as
//     every server up is) writes a snapshot past it and drops the log
//     before; the follower starts with this version on its data
//     directory: it restores the snapshot its old binary wrote, and is sent
//     the old leader's newer one (InstallSnapshot, old leader to new
//     follower);
//  2. the other follower is upgraded the same way (its leader is of the
//     previous release too, unless an election moved it to the first);
//  3. the first leader, the last server of the previous release, is
//     stopped (it hands leadership to a new server); once the new leader
//     has written a snapshot past it, it starts again with the previous
//     release's binary and is sent the new leader's snapshot (new leader
//     to old follower); it must then list every reservation acknowledged
//     before it started;
//  4. it is upgraded too.
//
// A snapshot written by one version and restored by the other that lost a
// field would show as a reservation missing from a list or as different
// state digests at the end, where every server runs this version; only
// this version reports a digest.
func TestRollingUpgradeSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs real processes")
	}
	start := time.Now()
	oldBin, newBin := buildBoth(t)
	s := newServers(t, oldBin,
		"PROXIMITY_COORDINATOR_RAFT_SNAPSHOT_THRESHOLD="+strconv.Itoa(snapThreshold),
		"PROXIMITY_COORDINATOR_RAFT_SNAPSHOT_INTERVAL=1s",
		"PROXIMITY_COORDINATOR_RAFT_TRAILING_LOGS="+strconv.Itoa(snapTrailing))
	s.start(oldBin, 10*time.Second)
	var in clusterInfo
	for i := range 3 {
		in = s.healthy(i, 60*time.Second)
	}
	t.Logf("previous release's cluster formed at %s", time.Since(start).Round(time.Millisecond))
	l := s.load("snap", 2)
	// Every old server writes a snapshot of its own.
	for i := range 3 {
		testutil.UntilTrue(t, 30*time.Second, fmt.Sprintf("c%d to write a snapshot", i+1), func() bool { return len(s.snapshots(i)) > 0 })
	}
	leader := s.healthy(0, 10*time.Second).leader()
	if leader < 0 {
		t.Fatalf("no leader named: %+v", in)
	}
	var followers []int
	for i := range 3 {
		if i != leader {
			followers = append(followers, i)
		}
	}

	// behind stops server i and waits until the leader (from the others'
	// view) has written a snapshot past everything i can hold and dropped
	// the log before it, so that i can only catch up from a snapshot. It
	// returns the leader and the last index i may hold.
	behind := func(i int) (leader int, last uint64) {
		t.Helper()
		s.stop(i)
		other := (i + 1) % 3
		testutil.Until(t, 30*time.Second, fmt.Sprintf("c%d to name a leader other than the stopped c%d", other+1, i+1), func() error {
			in := s.healthy(other, 30*time.Second)
			if leader = in.leader(); leader < 0 || leader == i {
				return fmt.Errorf("it names %q", in.Leader.ID)
			}
			return nil
		})
		// Nothing reaches i any more: its log ends at or before the
		// leader's, which ends a few in-flight entries past its commit.
		last = s.healthy(leader, 10*time.Second).CommitIndex + 8
		// Raft drops the log up to the snapshot's index less the
		// trailing entries (at the least).
		testutil.Until(t, 30*time.Second, fmt.Sprintf("leader c%d to write a snapshot past index %d", leader+1, last+snapTrailing), func() error {
			if snaps := s.snapshots(leader); len(snaps) == 0 || snaps[len(snaps)-1].Index <= last+snapTrailing {
				return fmt.Errorf("it has %+v", snaps)
			}
			return nil
		})
		return leader, last
	}
	// installed waits until server i, started again after behind, has
	// caught up with the leader and holds a snapshot the leader wrote past
	// last: it was sent it, as its log ended at last and the leader's now
	// begins after. Both keep only their last three snapshots, so what
	// they hold is gathered while i catches up.
	installed := func(i, leader int, last uint64) {
		t.Helper()
		theirs, mine := map[uint64]bool{}, map[uint64]bool{}
		testutil.Until(t, 60*time.Second, fmt.Sprintf("c%d to hold a snapshot of leader c%d past index %d", i+1, leader+1, last), func() error {
			for _, m := range s.snapshots(leader) {
				theirs[m.Index] = true
			}
			for _, m := range s.snapshots(i) {
				mine[m.Index] = true
			}
			for x := range mine {
				if x > last && theirs[x] {
					return nil
				}
			}
			return fmt.Errorf("it had snapshots at %v, the leader at %v", mine, theirs)
		})
		s.caughtUp(i, leader, 60*time.Second)
	}

	// 1 and 2: each old follower restores its old snapshot with this
	// version, and is sent the leader's. For the first the leader is of
	// the previous release, as every server up is; for the second it is
	// unless an election moved it to the first.
	upgraded := map[int]bool{}
	for _, f := range followers {
		lead, last := behind(f)
		mine := s.snapshots(f)
		if len(mine) == 0 {
			t.Fatalf("c%d, of the previous release, left no snapshot to start this version from", f+1)
		}
		s.launch(f, newBin)
		installed(f, lead, last)
		version := "old"
		if upgraded[lead] {
			version = "new"
		}
		upgraded[f] = true
		l.waitMore(t, 20)
		t.Logf("c%d upgraded from its old snapshot at index %d and sent %s c%d's at %s; %d reservations acknowledged",
			f+1, mine[len(mine)-1].Index, version, lead+1, time.Since(start).Round(time.Millisecond), l.count())
	}

	// 3: the last old server (the first leader), stopped, falls behind
	// the leader, now of this version as every server up is, and starts
	// again as it was: the leader sends it its snapshot.
	old := leader
	lead, last := behind(old)
	ackedBefore := l.ackedNow()
	s.launch(old, oldBin)
	installed(old, lead, last)
	l.check(t, s, old, ackedBefore)
	l.waitMore(t, 20)
	if !upgraded[lead] {
		t.Fatalf("c%d leads, and it runs the previous release", lead+1)
	}
	t.Logf("old c%d sent new c%d's snapshot at %s; lists all %d acknowledged before it started",
		old+1, lead+1, time.Since(start).Round(time.Millisecond), len(ackedBefore))

	// 4: and is upgraded.
	s.stop(old)
	s.launch(old, newBin)
	s.caughtUp(old, lead, 60*time.Second)
	l.waitMore(t, 20)
	l.end()

	for i := range 3 {
		l.check(t, s, i, l.ackedNow())
	}
	s.sameDigest(30 * time.Second)
	t.Logf("%d reservations acknowledged, %d attempts refused or failed during the upgrade; %s in all",
		l.count(), l.failures, time.Since(start).Round(time.Millisecond))
}
