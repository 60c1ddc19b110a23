package fsm

import (
	"fmt"
	"sort"

	"github.com/proximity-ve/proximity/internal/problem"
)

// Rolling upgrades (docs/architecture.md, "Mixed versions"; Consul's
// IgnoreUnknownTypeFlag and its version gating of new features).
//
// Every server applies the same log, so every server must make the same
// decision about every entry from the entry alone, whatever version it
// runs. Two rules give that:
//
//   - A command type is known to a server, or it is not. A server that
//     meets a type it does not know applies nothing of the entry: if the
//     type carries the Ignorable bit it skips the command (no state
//     change, not even in the dedup table) and answers a fixed result; if
//     not, it stops applying (a panic: the process exits, and exits again
//     at the same entry when it restarts) until it runs a version that
//     knows the type. Both depend only on the type number in the entry, so
//     every server of the same version does the same, and a server never
//     answers an error where another applied.
//   - A server's leader proposes a command type only once every server in
//     the Raft configuration reports a protocol version that knows it
//     (ProtocolVersion and CommandSince): so in a rolling upgrade a new
//     type is never written while an older server could meet it, and the
//     panic above is reached only by a server that was downgraded or
//     restored from an older binary, where stopping is right.
//
// Stopping is chosen over answering an error because an error result is
// itself state (the dedup table remembers it, the client sees it) that a
// newer server computes differently: the replicas would silently diverge.
// Stopping keeps the older server's state a prefix of everyone else's.

// Ignorable is the bit of a CommandType that marks a command an older
// server may skip. It is part of the type's number, fixed when the type is
// defined, so the decision is in every entry that carries it. Only a
// command whose effect a server can lack without answering anything
// differently may carry it: a hint, a cache, a value a later command
// writes in full. A server that skipped one keeps lacking its effect after
// it is upgraded, until a later command overwrites it.
const Ignorable CommandType = 0x8000

// IsIgnorable reports whether an older server may skip a command of this
// type.
func (t CommandType) IsIgnorable() bool { return t&Ignorable != 0 }

// ProtocolVersion is the newest protocol this version speaks: it knows
// every command type whose CommandSince is at most this. Servers announce
// it over gossip (the cluster's meta). Raise it, and give the new types it
// in commandTypes, whenever a release adds a command type.
//
//   - 1: the releases that announced no protocol (BaseProtocol). They
//     answer an error result to a type they do not know, ignorable or not:
//     nothing new may reach them.
//   - 2: the Ignorable bit is understood, unknown types stop the server,
//     and servers announce their protocol. No new command types.
const ProtocolVersion = 2

// BaseProtocol is what a server that announces no protocol speaks.
const BaseProtocol = 1

// IgnorableProtocol is the first protocol whose servers skip an ignorable
// type they do not know: an ignorable type may be proposed once every
// server speaks this or knows the type.
const IgnorableProtocol = 2

// commandTypes is every command type this version knows: its name (the
// payload's field in the log) and the protocol version that introduced it.
// A type missing here is unknown (Apply stops at it or skips it); a type
// here must be handled by dispatch. Append only, like the numbers.
var commandTypes = map[CommandType]commandType{
	CmdReserve:             {"reserve", 1},
	CmdRelease:             {"release", 1},
	CmdMarkForeign:         {"mark_foreign", 1},
	CmdInitAdmin:           {"init_admin", 1},
	CmdCreateUser:          {"create_user", 1},
	CmdCreateToken:         {"create_token", 1},
	CmdSetNetwork:          {"set_network", 1},
	CmdSetPools:            {"set_pools", 1},
	CmdUpsertServer:        {"upsert_server", 1},
	CmdRemoveServer:        {"remove_server", 1},
	CmdUnmarkForeign:       {"unmark_foreign", 1},
	CmdSetCA:               {"set_ca", 1},
	CmdJoinToken:           {"join_token", 1},
	CmdJoinNode:            {"join_node", 1},
	CmdNodeStatus:          {"node_status", 1},
	CmdCreateTask:          {"create_task", 1},
	CmdCompleteTask:        {"complete_task", 1},
	CmdReissueTask:         {"reissue_task", 1},
	CmdSetCatalog:          {"set_catalog", 1},
	CmdCreateApp:           {"create_app", 1},
	CmdAppStep:             {"app_step", 1},
	CmdAppAction:           {"app_action", 1},
	CmdRemoveApp:           {"remove_app", 1},
	CmdCloneApp:            {"clone_app", 1},
	CmdCleanupDone:         {"cleanup_done", 1},
	CmdAdoptApp:            {"adopt_app", 1},
	CmdSetResources:        {"set_resources", 1},
	CmdRemoveNode:          {"remove_node", 1},
	CmdSealCA:              {"seal_ca", 1},
	CmdUpdateUser:          {"update_user", 1},
	CmdDeleteUser:          {"delete_user", 1},
	CmdRevokeToken:         {"revoke_token", 1},
	CmdSetPassword:         {"set_password", 1},
	CmdSetTOTP:             {"set_totp", 1},
	CmdSetOIDC:             {"set_oidc", 1},
	CmdOIDCUser:            {"oidc_login", 1},
	CmdSetQuotas:           {"set_quotas", 1},
	CmdAudit:               {"audit", 1},
	CmdSetAuditPolicy:      {"set_audit_policy", 1},
	CmdCancelApp:           {"cancel_app", 1},
	CmdExpireTask:          {"expire_task", 1},
	CmdSetPlacement:        {"set_placement", 1},
	CmdSetNodeAddress:      {"set_node_address", 1},
	CmdAddCatalogSource:    {"add_catalog_source", 1},
	CmdRemoveCatalogSource: {"remove_catalog_source", 1},
	CmdCatalogFetched:      {"catalog_fetched", 1},
	CmdMoveApp:             {"move_app", 1},
	CmdMoveStep:            {"move_step", 1},
	CmdSetUpdatePolicy:     {"set_update_policy", 1},
	CmdUpdateNotice:        {"update_notice", 1},
	CmdAutoUpdate:          {"auto_update", 1},
	CmdSetBackupPolicy:     {"set_backup_policy", 1},
	CmdSetBackupDefaults:   {"set_backup_defaults", 1},
	CmdBackupSchedule:      {"backup_schedule", 1},
	CmdPruneBackup:         {"prune_backup", 1},
}

type commandType struct {
	name  string
	since int
}

// CommandSince returns the protocol version that introduced a command
// type, and whether this version knows the type.
func CommandSince(t CommandType) (int, bool) {
	ct, ok := commandTypes[t]
	return ct.since, ok
}

// KnownCommand reports whether this version applies commands of type t.
func KnownCommand(t CommandType) bool {
	_, ok := commandTypes[t]
	return ok
}

// ProtocolNeeded is the protocol every server must speak before a command
// of type t is proposed: the type's, or IgnorableProtocol for an ignorable
// type of a newer protocol (a server of IgnorableProtocol skips it).
func ProtocolNeeded(t CommandType) int {
	need, ok := CommandSince(t)
	if !ok {
		return ProtocolVersion + 1
	}
	if t.IsIgnorable() && need > IgnorableProtocol {
		need = IgnorableProtocol
	}
	return need
}

// ServerProtocol is a server's protocol version as the proposing server
// knows it: 0 when the server has never reported one to it.
type ServerProtocol struct {
	ID       string
	Protocol int
}

// CheckProtocol refuses (Unavailable, 503) a command type that some server
// of the configuration does not know yet, or has not said whether it
// knows: proposing it would stop that server. Types of the base protocol
// are never refused; an ignorable type is refused only while a server
// speaks less than IgnorableProtocol (it would answer an error, not skip).
func CheckProtocol(t CommandType, servers []ServerProtocol) error {
	if !KnownCommand(t) {
		return problem.E(problem.Internal, "command type %s is not known to this version", t)
	}
	need := ProtocolNeeded(t)
	if need <= BaseProtocol {
		return nil
	}
	sorted := append([]ServerProtocol(nil), servers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, s := range sorted {
		if s.Protocol == 0 {
			return problem.E(problem.Unavailable,
				"the cluster is being upgraded: server %s has not reported its version, so command %s (protocol %d) waits until it does or is removed",
				s.ID, t, need)
		}
		if s.Protocol < need {
			return problem.E(problem.Unavailable,
				"the cluster is being upgraded: server %s does not know command %s yet (it speaks protocol %d, the command needs %d); upgrade it first",
				s.ID, t, s.Protocol, need)
		}
	}
	return nil
}

// String names a command type: its name if this version knows it, else
// its number (with the ignorable bit spelled out).
func (t CommandType) String() string {
	if ct, ok := commandTypes[t]; ok {
		return ct.name
	}
	if t.IsIgnorable() {
		return fmt.Sprintf("%d (ignorable)", uint16(t&^Ignorable))
	}
	return fmt.Sprintf("%d", uint16(t))
}
