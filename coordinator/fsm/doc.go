// Package fsm is the coordinator's replicated state machine: the single
// writer of all shared state.
//
// # Log entries
//
// Every Raft log entry is a Batch: a version byte followed by the JSON
// encoding of a list of Commands. The leader's proposer gathers the
// commands that arrive while the previous entry is being written into one
// batch (group commit); a single command is a batch of one. Apply answers
// with a []Result, one per command, in order.
//
// # Commands
//
// A Command is a tagged union: Type names which payload field is set.
// Command types are append-only numbers, each with the protocol version
// that introduced it (protocol.go). A type this version does not know stops
// the server at that entry (a panic, the same on every server of this
// version) unless its number carries the Ignorable bit, in which case the
// command is skipped without any state change; the leader proposes a new
// type only once every server announces a protocol that knows it
// (CheckProtocol), so a rolling upgrade never meets either case. A type's
// payload never changes shape: a new payload is a new type.
//
// Every command carries a RequestID. The FSM keeps a dedup table from
// request ID to the first result and a fingerprint of the command's
// payload: a command whose request ID is already in the table is not
// applied again; it answers with the stored result (or with Conflict when
// the payload differs, meaning a client reused an ID for another request).
// Entries are forgotten once they are DedupWindow log indexes old, which is
// deterministic on every server.
//
// # Determinism
//
// Apply reads no clock and no randomness and never lets map iteration order
// choose anything. IDs and timestamps are filled in before a command is
// proposed. Pools are searched from a cursor that is part of the state, so
// every server hands out the same VMID, ports and address.
//
// # Fencing, cancel and deadlines
//
// A task's Fence is the log index that issued it; CompleteTask accepts a
// result only under the current fence. CancelApp (a person ends an app's
// operation) and ExpireTask (a task ran past its stage's deadline) fail
// the pending task under a new fence, so its agent's late result is
// refused and can never complete the operation; FencedTasks tells the
// Work stream which tasks to stop. The lifecycle controller then undoes
// the operation (Undoing names the undo's steps, which are not cancelled).
//
// # Change notices
//
// While it applies a command that succeeded, the FSM notes what changed
// (an app, a backup, a node: kind, key, owner) in a bounded ring kept in
// memory, not in snapshots: the events stream reads it (ChangesAfter).
// The notices derive from the log alone, so every server notes the same
// ones with the same IDs (log index and position); after a restore the
// ring starts empty and older positions ask for a reset.
//
// # Scheduled backups and retention
//
// Each app's next scheduled backup is state (BackupSchedules), set by the
// leader's scheduler with BackupSchedule, which applies only at the next
// run it expects: the command that starts a run also moves the next one,
// so two leaders proposing the same run start it once. When a backup
// becomes ready, AppStep plans the prune of the app's backups with
// internal/prune and records what the retention removes (PendingPrunes);
// PruneBackup deletes only those. Retention periods are read in the time
// zone of the backup settings, from the zone database (time/tzdata is
// linked in, for servers without one): keep the servers' tzdata alike.
//
// # Updates
//
// An app keeps the catalog version it runs (CatalogVersion) until an
// update succeeds: the update's target (AppActionCmd.Version, which must
// be what its catalog entry offers when the update starts) is recorded
// only by the AppStep that ends it with UpdatedTo; a failed or cancelled
// update leaves the version and names its target in Updates.Failed. The
// leader's updater starts automatic updates with AutoUpdate, which applies
// only to an idle app whose policy is auto and which is still at the
// version the updater read (ExpectVersion), and appends the audit record
// in the same entry: two leaders acting on the same state start one
// update. UpdateNotice records a newer version once (an app change
// notice); SetUpdatePolicy sets the policy. Maintenance windows are
// evaluated by the updater with its own clock, never in Apply.
//
// # Registry guarantees
//
//   - A VMID is held by at most one reservation and is never one marked
//     foreign.
//   - A hostname (compared in lower case) is held by at most one reservation.
//     An app being moved (MoveApp) also has a standby reservation that
//     carries its hostname without holding it; the switch (MoveStep) hands
//     the hostname to it in the same command that makes the app's old
//     reservation the standby, and the move's end frees the standby.
//   - A (node, public port) pair is held by at most one reservation.
//   - An IPv4 address is held by at most one reservation and lies in the
//     configured subnet, never its network, broadcast or gateway address.
//   - Reserve takes the whole tuple or nothing; Release frees all of it.
//   - A reservation an app holds (owner "app:<id>") is freed only by the
//     app's lifecycle (its removal, or a deploy that failed for good): the
//     Release command refuses it with a Conflict naming the app, and a
//     moving app's standby reservation too.
//
// Freed VMIDs are not handed out again until the cursor wraps around the
// range: a destroyed container's backups (named after its VMID) never
// collide with a new container's.
package fsm
