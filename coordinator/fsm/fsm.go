package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/proximity-ve/proximity/internal/problem"
)

// DefaultDedupWindow is how many log indexes a request ID is remembered.
const DefaultDedupWindow = 100_000

// FSM implements raft.FSM over the State. Apply runs on Raft's FSM
// goroutine; reads from API handlers take the read lock.
type FSM struct {
	mu      sync.RWMutex
	st      *State
	window  uint64
	applied atomic.Uint64

	chMu    sync.Mutex
	changed chan struct{}

	// changes are the recent changes for the events stream (events.go),
	// under mu.
	changes changeRing

	logger atomic.Pointer[slog.Logger]
	digest atomic.Pointer[stateDigest] // the last Digest
}

// SetLogger sets where the FSM logs (the commands it skips); slog's
// default until it is called.
func (f *FSM) SetLogger(l *slog.Logger) { f.logger.Store(l) }

func (f *FSM) log() *slog.Logger {
	if l := f.logger.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// Changed returns a channel that is closed after the next entry is applied
// (or a snapshot restored). Watchers read the state, then wait on it.
func (f *FSM) Changed() <-chan struct{} {
	f.chMu.Lock()
	defer f.chMu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

func (f *FSM) notify() {
	f.chMu.Lock()
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
	f.chMu.Unlock()
}

// New returns an FSM with empty state.
func New(dedupWindow uint64) *FSM {
	if dedupWindow == 0 {
		dedupWindow = DefaultDedupWindow
	}
	return &FSM{st: newState(), window: dedupWindow, changes: changeRing{max: DefaultChangeRing}}
}

// AppliedIndex is the index of the last entry applied to this FSM.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Apply applies one log entry. Entries that are not commands (Raft's own
// configuration and no-op entries) never reach it.
func (f *FSM) Apply(l *raft.Log) any {
	cmds, err := DecodeBatch(l.Data)
	if err != nil {
		// A committed entry that does not decode is a corrupt log or a
		// command written by a newer version's encoding: refuse to guess.
		panic(fmt.Sprintf("fsm: raft log entry %d is corrupt: %v", l.Index, err))
	}
	// Every command of the entry is checked before any is applied, so a
	// server that stops here has applied nothing of the entry (protocol.go).
	for i := range cmds {
		if t := cmds[i].Type; !KnownCommand(t) && !t.IsIgnorable() {
			panic(fmt.Sprintf("fsm: failed to apply raft log entry %d: unknown command type %s, which this version "+
				"(protocol %d) does not know and its writer did not mark ignorable; every server of this version stops "+
				"at this entry: upgrade this server to the version the leader runs", l.Index, t, ProtocolVersion))
		}
	}
	results := make([]Result, len(cmds))
	var changes []Change
	f.mu.Lock()
	for i := range cmds {
		if !KnownCommand(cmds[i].Type) {
			results[i] = skipped(l.Index, cmds[i].Type)
			f.log().Warn("skipped a command this version does not know; its writer marked it ignorable",
				"index", l.Index, "type", cmds[i].Type, "request_id", cmds[i].RequestID, "protocol", ProtocolVersion)
			continue
		}
		before := f.st.changeBefore(&cmds[i])
		results[i] = f.st.applyOne(l.Index, &cmds[i], f.window)
		if !results[i].Replayed && results[i].Err() == nil {
			changes = append(changes, f.st.changes(&cmds[i], results[i], before)...)
		}
	}
	f.changes.add(l.Index, changes)
	f.st.forgetBefore(l.Index, f.window)
	f.st.Index = l.Index
	f.digest.Store(nil)
	f.mu.Unlock()
	f.applied.Store(l.Index)
	f.notify()
	return results
}

// ApplyCommands applies commands as if they were the entry at index. It is
// what Apply does after decoding; tests and tools use it directly.
func (f *FSM) ApplyCommands(index uint64, cmds ...Command) []Result {
	data, err := EncodeBatch(cmds)
	if err != nil {
		panic(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).([]Result)
}

// Read runs fn with the state under the read lock. fn must not keep
// references into the state after it returns.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Snapshot captures the state. It is called on the FSM goroutine, so no
// Apply runs concurrently; the encoding is done here and Persist only
// writes bytes.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	data, err := f.st.encode()
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return snapshot(data), nil
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore: read: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	f.st = st
	f.digest.Store(nil)
	f.changes.reset(st.Index)
	f.mu.Unlock()
	f.applied.Store(st.Index)
	f.notify()
	return nil
}

// Encode returns the canonical encoding of the current state: two FSMs
// with the same state encode to the same bytes.
func (f *FSM) Encode() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.encode()
}

// Digest is the SHA-256 of the state's canonical encoding, in hex, and
// the log index it was taken at: two servers at the same index whose
// digests differ have diverged.
// The state is encoded under the read lock, which holds Apply off, so
// the digest is computed once per change and kept until the next Apply or
// Restore.
func (f *FSM) Digest() (digest string, index uint64, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	index = f.st.Index
	if d := f.digest.Load(); d != nil && d.index == index {
		return d.sum, index, nil
	}
	b, err := f.st.encode()
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(b)
	digest = hex.EncodeToString(sum[:])
	f.digest.Store(&stateDigest{index: index, sum: digest})
	return digest, index, nil
}

type stateDigest struct {
	index uint64
	sum   string
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}

// skipped is the result of an ignorable command this version does not
// know: nothing is applied and nothing is remembered, on every server of
// this version alike.
func skipped(index uint64, t CommandType) Result {
	r := failure(problem.E(problem.Unavailable, "command type %s is not known to this server's version (protocol %d); skipped", t, ProtocolVersion))
	r.Index = index
	return r
}

// applyOne applies one command with deduplication.
func (s *State) applyOne(index uint64, c *Command, window uint64) Result {
	if c.RequestID == "" {
		return failure(problem.E(problem.Invalid, "request_id: required"))
	}
	fp := c.fingerprint()
	if d, ok := s.Dedup[c.RequestID]; ok {
		if d.Fingerprint != fp {
			return failure(problem.E(problem.Conflict,
				"request_id %q was already used for a different request", c.RequestID))
		}
		r := d.Result
		r.Replayed = true
		return r
	}
	r := s.dispatch(index, c)
	r.Index = index
	s.remember(index, c.RequestID, fp, r)
	return r
}

func (s *State) dispatch(index uint64, c *Command) Result {
	var err error
	var r Result
	switch {
	case c.Type == CmdReserve && c.Reserve != nil:
		r.Reservation, err = s.reserve(index, c.Reserve)
	case c.Type == CmdRelease && c.Release != nil:
		err = s.releaseCmd(c.Release.ID)
	case c.Type == CmdMarkForeign && c.Foreign != nil:
		err = s.markForeign(c.Foreign.VMIDs, true)
	case c.Type == CmdUnmarkForeign && c.Foreign != nil:
		err = s.markForeign(c.Foreign.VMIDs, false)
	case c.Type == CmdInitAdmin && c.InitAdmin != nil:
		r.User, r.Token, err = s.initAdmin(index, c.InitAdmin)
	case c.Type == CmdCreateUser && c.CreateUser != nil:
		r.User, err = s.createUser(index, c.CreateUser.User)
	case c.Type == CmdCreateToken && c.CreateToken != nil:
		r.Token, err = s.createToken(index, c.CreateToken.Token)
	case c.Type == CmdSetNetwork && c.SetNetwork != nil:
		err = s.setNetwork(*c.SetNetwork)
	case c.Type == CmdSetPools && c.SetPools != nil:
		err = s.setPools(*c.SetPools)
	case c.Type == CmdUpsertServer && c.UpsertServer != nil:
		err = s.upsertServer(*c.UpsertServer)
	case c.Type == CmdRemoveServer && c.RemoveServer != nil:
		err = s.removeServer(*c.RemoveServer)
	case c.Type == CmdSetCA && c.SetCA != nil:
		err = s.setCA(*c.SetCA)
	case c.Type == CmdSealCA && c.SealCA != nil:
		err = s.sealCA(*c.SealCA)
	case c.Type == CmdUpdateUser && c.UpdateUser != nil:
		r.User, err = s.updateUser(*c.UpdateUser)
	case c.Type == CmdDeleteUser && c.DeleteUser != nil:
		err = s.deleteUser(*c.DeleteUser)
	case c.Type == CmdRevokeToken && c.RevokeToken != nil:
		err = s.revokeToken(*c.RevokeToken)
	case c.Type == CmdSetPassword && c.SetPassword != nil:
		err = s.setPassword(*c.SetPassword)
	case c.Type == CmdSetTOTP && c.SetTOTP != nil:
		err = s.setTOTP(*c.SetTOTP)
	case c.Type == CmdJoinToken && c.JoinToken != nil:
		err = s.createJoinToken(*c.JoinToken)
	case c.Type == CmdJoinNode && c.JoinNode != nil:
		r.Node, err = s.joinNode(*c.JoinNode)
	case c.Type == CmdNodeStatus && c.NodeStatus != nil:
		r.Node, err = s.setNodeStatus(*c.NodeStatus)
	case c.Type == CmdCreateTask && c.CreateTask != nil:
		r.Task, err = s.createTask(index, *c.CreateTask)
	case c.Type == CmdCompleteTask && c.CompleteTask != nil:
		r.Task, err = s.completeTask(index, *c.CompleteTask)
	case c.Type == CmdReissueTask && c.ReissueTask != nil:
		r.Task, err = s.reissueTask(index, *c.ReissueTask)
	case c.Type == CmdSetCatalog && c.SetCatalog != nil:
		err = s.setCatalog(*c.SetCatalog)
	case c.Type == CmdCreateApp && c.CreateApp != nil:
		r.App, err = s.createApp(index, *c.CreateApp)
	case c.Type == CmdAppStep && c.AppStep != nil:
		r.App, err = s.appStep(*c.AppStep)
	case c.Type == CmdAppAction && c.AppAction != nil:
		r.App, err = s.appAction(index, *c.AppAction)
	case c.Type == CmdRemoveApp && c.RemoveApp != nil:
		err = s.removeApp(*c.RemoveApp)
	case c.Type == CmdCloneApp && c.CloneApp != nil:
		r.App, err = s.cloneApp(index, *c.CloneApp)
	case c.Type == CmdSetResources && c.SetResources != nil:
		err = s.setResources(*c.SetResources)
	case c.Type == CmdSetQuotas && c.SetQuotas != nil:
		err = s.setQuotas(*c.SetQuotas)
	case c.Type == CmdAdoptApp && c.AdoptApp != nil:
		r.App, err = s.adoptApp(index, *c.AdoptApp)
	case c.Type == CmdRemoveNode && c.RemoveNode != nil:
		err = s.removeNode(*c.RemoveNode)
	case c.Type == CmdAudit && c.Audit != nil:
		err = s.appendAudit(*c.Audit)
	case c.Type == CmdSetAuditPolicy && c.SetAuditPolicy != nil:
		err = s.setAuditPolicy(*c.SetAuditPolicy)
	case c.Type == CmdSetOIDC && c.SetOIDC != nil:
		err = s.setOIDC(*c.SetOIDC)
	case c.Type == CmdOIDCUser && c.OIDCLogin != nil:
		r.User, r.Token, err = s.oidcLogin(index, *c.OIDCLogin)
	case c.Type == CmdCancelApp && c.CancelApp != nil:
		r.App, err = s.cancelApp(index, *c.CancelApp)
	case c.Type == CmdExpireTask && c.ExpireTask != nil:
		r.Task, err = s.expireTask(index, *c.ExpireTask)
	case c.Type == CmdSetPlacement && c.SetPlacement != nil:
		err = s.setPlacement(*c.SetPlacement)
	case c.Type == CmdSetNodeAddress && c.SetNodeAddress != nil:
		r.Node, err = s.setNodeAddress(*c.SetNodeAddress)
	case c.Type == CmdAddCatalogSource && c.AddCatalogSource != nil:
		err = s.addCatalogSource(*c.AddCatalogSource)
	case c.Type == CmdRemoveCatalogSource && c.RemoveCatalogSource != nil:
		err = s.removeCatalogSource(*c.RemoveCatalogSource)
	case c.Type == CmdCatalogFetched && c.CatalogFetched != nil:
		err = s.catalogFetched(*c.CatalogFetched)
	case c.Type == CmdMoveApp && c.MoveApp != nil:
		r.App, err = s.moveApp(index, *c.MoveApp)
	case c.Type == CmdMoveStep && c.MoveStep != nil:
		r.App, err = s.moveStep(*c.MoveStep)
	case c.Type == CmdSetUpdatePolicy && c.SetUpdatePolicy != nil:
		r.App, err = s.setUpdatePolicy(*c.SetUpdatePolicy)
	case c.Type == CmdUpdateNotice && c.UpdateNotice != nil:
		r.App, err = s.updateNotice(*c.UpdateNotice)
	case c.Type == CmdAutoUpdate && c.AutoUpdate != nil:
		r.App, err = s.autoUpdate(index, *c.AutoUpdate)
	case c.Type == CmdSetBackupPolicy && c.SetBackupPolicy != nil:
		err = s.setBackupPolicy(*c.SetBackupPolicy)
	case c.Type == CmdSetBackupDefaults && c.SetBackupDefaults != nil:
		err = s.setBackupDefaults(*c.SetBackupDefaults)
	case c.Type == CmdBackupSchedule && c.BackupSchedule != nil:
		r.App, err = s.backupSchedule(index, *c.BackupSchedule)
	case c.Type == CmdPruneBackup && c.PruneBackup != nil:
		r.App, err = s.pruneBackup(index, *c.PruneBackup)
	case c.Type == CmdCleanupDone && c.CleanupDone != nil:
		delete(s.Cleanups, c.CleanupDone.ID)
	default:
		// Apply let only known types through: a known type without its
		// payload was written wrong, the same way for every server that
		// knows the type (a type's payload never changes; a new payload
		// is a new type).
		err = problem.E(problem.Invalid, "command type %s without its payload", c.Type)
	}
	if err != nil {
		return failure(err)
	}
	return r
}
