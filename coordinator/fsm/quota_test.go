package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// quotaFSM is a state with a catalog entry, an enrolled node, the default
// quota def and two users: alice (with her own quota, if own is set) and
// bob.
func quotaFSM(t *testing.T, def, own *Quota) *FSM {
	t.Helper()
	f := New(0)
	cmds := []Command{
		{Type: CmdSetCatalog, RequestID: "cat", SetCatalog: &CatalogState{Entries: []catalog.Entry{{
			ID: "web", Name: "Web", Version: "1", Ports: []catalog.Port{{Name: "http", Internal: 8080, Protocol: "tcp"}}}}}},
		{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
		{Type: CmdJoinNode, RequestID: "j", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}},
		{Type: CmdCreateUser, RequestID: "alice", CreateUser: &CreateUserCmd{User: User{ID: "alice", Name: "alice", Role: RoleUser, Quota: own}}},
		{Type: CmdCreateUser, RequestID: "bob", CreateUser: &CreateUserCmd{User: User{ID: "bob", Name: "bob", Role: RoleUser}}},
	}
	if def != nil {
		cmds = append(cmds, Command{Type: CmdSetQuotas, RequestID: "quotas", SetQuotas: def})
	}
	for _, c := range cmds {
		mustOK(t, apply(t, f, c)[0])
	}
	return f
}

func createAppCmd(rid, owner, host string, res catalog.Resources) Command {
	return Command{Type: CmdCreateApp, RequestID: rid, CreateApp: &CreateAppCmd{
		App:     App{ID: "app-" + rid, Owner: owner, CatalogID: "web", Resources: res, CreatedAt: t0},
		Reserve: ReserveCmd{ID: "res-" + rid, Hostname: host, Node: "pve1", PublicPorts: 1, Owner: "app:app-" + rid, CreatedAt: t0},
	}}
}

// wantQuotaRefusal checks that r is the quota's refusal with detail.
func wantQuotaRefusal(t *testing.T, r Result, detail string) {
	t.Helper()
	err := r.Err()
	if !problem.Is(err, problem.Conflict) || problem.TypeOf(err) != ProblemQuotaExceeded || r.ErrDetail != detail {
		t.Fatalf("got %v (kind %v, type %q), want the quota refusal %q", err, problem.KindOf(err), problem.TypeOf(err), detail)
	}
}

// TestQuotaEnforcedWhenAnAppIsMade: each limit refuses the app that would
// pass it, with the limit and the usage in the detail; 0 is unlimited; a
// user's own quota wins over the default; deleted apps and other users'
// apps do not count.
func TestQuotaEnforcedWhenAnAppIsMade(t *testing.T) {
	small := catalog.Resources{Cores: 1, MemoryMB: 512, DiskGB: 2}
	big := catalog.Resources{Cores: 4, MemoryMB: 4096, DiskGB: 20}
	for _, tc := range []struct {
		name     string
		def, own *Quota
		have     []catalog.Resources // alice's apps before the request
		deleted  int                 // how many of them were deleted since
		bobs     int                 // bob's apps
		add      catalog.Resources
		want     string // the refusal's detail; "" for accepted
	}{
		{name: "no quota at all", have: []catalog.Resources{big, big, big}, add: big},
		{name: "all limits 0 are unlimited", def: &Quota{}, have: []catalog.Resources{big, big, big}, add: big},
		{name: "max_apps room left", def: &Quota{MaxApps: 3}, have: []catalog.Resources{small, small}, add: small},
		{name: "max_apps full", def: &Quota{MaxApps: 3}, have: []catalog.Resources{small, small, small}, add: small,
			want: "quota exceeded: max_apps 3, in use 3 (this request adds 1)"},
		{name: "max_cores exactly full is allowed", def: &Quota{MaxCores: 5}, have: []catalog.Resources{big}, add: small},
		{name: "max_cores", def: &Quota{MaxCores: 5}, have: []catalog.Resources{big}, add: catalog.Resources{Cores: 2, MemoryMB: 512, DiskGB: 2},
			want: "quota exceeded: max_cores 5, in use 4 (this request adds 2)"},
		{name: "max_memory_mb", def: &Quota{MaxMemoryMB: 4096}, have: []catalog.Resources{small}, add: big,
			want: "quota exceeded: max_memory_mb 4096, in use 512 (this request adds 4096)"},
		{name: "max_disk_gb", def: &Quota{MaxDiskGB: 21}, have: []catalog.Resources{small}, add: big,
			want: "quota exceeded: max_disk_gb 21, in use 2 (this request adds 20)"},
		{name: "the first limit passed is named", def: &Quota{MaxApps: 1, MaxCores: 1, MaxMemoryMB: 1, MaxDiskGB: 1}, have: []catalog.Resources{small}, add: big,
			want: "quota exceeded: max_apps 1, in use 1 (this request adds 1)"},
		{name: "the user's own quota wins over a stricter default", def: &Quota{MaxApps: 1}, own: &Quota{MaxApps: 5}, have: []catalog.Resources{small, small}, add: small},
		{name: "the user's own quota wins over a looser default", def: &Quota{MaxApps: 10}, own: &Quota{MaxApps: 2}, have: []catalog.Resources{small, small}, add: small,
			want: "quota exceeded: max_apps 2, in use 2 (this request adds 1)"},
		{name: "the user's own unlimited quota wins", def: &Quota{MaxApps: 1}, own: &Quota{}, have: []catalog.Resources{small, small}, add: small},
		{name: "deleted apps do not count", def: &Quota{MaxApps: 2, MaxCores: 5}, have: []catalog.Resources{big, big, small}, deleted: 2, add: big},
		{name: "other users' apps do not count", def: &Quota{MaxApps: 1}, bobs: 3, add: small},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The apps are made first and the default quota is set
			// after them, as an admin may tighten it.
			f := quotaFSM(t, nil, tc.own)
			for i := 0; i < tc.bobs; i++ {
				mustOK(t, apply(t, f, createAppCmd(fmt.Sprint("b", i), "bob", fmt.Sprint("bob-", i), small))[0])
			}
			for i, res := range tc.have {
				mustOK(t, apply(t, f, createAppCmd(fmt.Sprint("a", i), "alice", fmt.Sprint("alice-", i), res))[0])
			}
			for i := 0; i < tc.deleted; i++ {
				mustOK(t, apply(t, f, Command{Type: CmdRemoveApp, RequestID: fmt.Sprint("rm", i), RemoveApp: &RemoveAppCmd{ID: fmt.Sprint("app-a", i)}})[0])
			}
			if tc.def != nil {
				mustOK(t, apply(t, f, Command{Type: CmdSetQuotas, RequestID: "quotas", SetQuotas: tc.def})[0])
			}
			before := registryOf(f)
			r := apply(t, f, createAppCmd("new", "alice", "new-one", tc.add))[0]
			if tc.want == "" {
				mustOK(t, r)
				return
			}
			wantQuotaRefusal(t, r, tc.want)
			// Nothing is reserved by a refusal.
			if after := registryOf(f); after != before {
				t.Fatalf("the refusal changed the registry: %+v, then %+v", before, after)
			}
			// The refusal is remembered with its type: a retry under the
			// same request ID gets the same answer.
			again := apply(t, f, createAppCmd("new", "alice", "new-one", tc.add))[0]
			if !again.Replayed {
				t.Fatal("the retry was not deduplicated")
			}
			wantQuotaRefusal(t, again, tc.want)
		})
	}
}

// registry is what a refused command must leave as it was.
type registry struct {
	reservations, apps, vmidCursor int
	seq                            uint64
	hostHeld, sourceBusy           bool
}

func registryOf(f *FSM) registry {
	var r registry
	f.Read(func(s *State) {
		_, held := s.byHostname["new-one"]
		_, copyHeld := s.byHostname["copy"]
		busy := false
		for _, a := range s.Apps {
			busy = busy || a.Op == OpCloneSource
		}
		r = registry{len(s.Reservations), len(s.Apps), s.VMIDCursor, s.Seq, held || copyHeld, busy}
	})
	return r
}

// TestQuotaEnforcedWhenAnAppIsCloned: a clone counts against the owner of
// the source with the source's resources; a refused clone reserves
// nothing and leaves the source free.
func TestQuotaEnforcedWhenAnAppIsCloned(t *testing.T) {
	f := quotaFSM(t, &Quota{MaxApps: 2, MaxCores: 3}, nil)
	res := catalog.Resources{Cores: 2, MemoryMB: 512, DiskGB: 2}
	mustOK(t, apply(t, f, createAppCmd("src", "alice", "src", res))[0])
	for _, step := range []string{"a", "b", "c"} {
		mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: "step-" + step, AppStep: &AppStepCmd{
			ID: "app-src", ExpectOp: OpDeploy, ExpectStep: map[string]string{"a": "", "b": "a", "c": "b"}[step], Step: step,
			Done: step == "c", Status: map[bool]string{true: AppRunning}[step == "c"], At: t0}})[0])
	}
	clone := Command{Type: CmdCloneApp, RequestID: "clone", CloneApp: &CloneAppCmd{SourceID: "app-src",
		App: App{ID: "app-clone", Owner: "alice", CreatedAt: t0}, Reserve: ReserveCmd{ID: "res-clone", Hostname: "copy", Owner: "app:app-clone", CreatedAt: t0}}}
	before := registryOf(f)
	wantQuotaRefusal(t, apply(t, f, clone)[0], "quota exceeded: max_cores 3, in use 2 (this request adds 2)")
	if after := registryOf(f); after != before {
		t.Fatalf("the refused clone changed the registry: %+v, then %+v", before, after)
	}
	// With room, the same kind of clone goes through.
	mustOK(t, apply(t, f, Command{Type: CmdSetQuotas, RequestID: "more", SetQuotas: &Quota{MaxApps: 2, MaxCores: 4}})[0])
	clone.RequestID = "clone2"
	mustOK(t, apply(t, f, clone)[0])
}

// TestQuotaSettingsValidatedAndSnapshotted: the default quota takes 0 to
// 2^30 per limit, is replaced whole by each command, and survives a
// snapshot and restore.
func TestQuotaSettingsValidatedAndSnapshotted(t *testing.T) {
	f := New(0)
	for i, bad := range []Quota{{MaxApps: -1}, {MaxCores: -5}, {MaxMemoryMB: 1<<30 + 1}, {MaxDiskGB: -1}} {
		r := apply(t, f, Command{Type: CmdSetQuotas, RequestID: fmt.Sprint("bad", i), SetQuotas: &bad})[0]
		mustKind(t, r, problem.Invalid)
	}
	if err := (Quota{MaxApps: -1, MaxDiskGB: -1}).Validate(); err == nil || err.Error() != "max_apps: -1 must be 0 (unlimited) to 1073741824" {
		t.Fatalf("Validate names the first bad limit: %v", err)
	}
	if q := stateOf(t, f).DefaultQuota(); q != (Quota{}) {
		t.Fatalf("refused settings were stored: %+v", q)
	}
	want := Quota{MaxApps: 3, MaxCores: 8, MaxMemoryMB: 8192, MaxDiskGB: 1 << 30}
	mustOK(t, apply(t, f, Command{Type: CmdSetQuotas, RequestID: "set", SetQuotas: &want})[0])
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := New(0)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if q := stateOf(t, g).DefaultQuota(); q != want {
		t.Fatalf("restored default quota %+v, want %+v", q, want)
	}
	if q := stateOf(t, g).QuotaFor("nobody"); q != want {
		t.Fatalf("the quota of a user without one is %+v, want the default", q)
	}
}
