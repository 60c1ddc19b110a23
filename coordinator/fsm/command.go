package fsm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// CommandType names a command. The values are stored in the Raft log:
// append only, never renumber or reuse.
type CommandType uint16

// The command types.
const (
	CmdReserve       CommandType = 1
	CmdRelease       CommandType = 2
	CmdMarkForeign   CommandType = 3
	CmdInitAdmin     CommandType = 4
	CmdCreateUser    CommandType = 5
	CmdCreateToken   CommandType = 6
	CmdSetNetwork    CommandType = 7
	CmdSetPools      CommandType = 8
	CmdUpsertServer  CommandType = 9
	CmdRemoveServer  CommandType = 10
	CmdUnmarkForeign CommandType = 11
	CmdSetCA         CommandType = 12
	CmdJoinToken     CommandType = 13
	CmdJoinNode      CommandType = 14
	CmdNodeStatus    CommandType = 15
	CmdCreateTask    CommandType = 16
	CmdCompleteTask  CommandType = 17
	CmdReissueTask   CommandType = 18
	CmdSetCatalog    CommandType = 19
	CmdCreateApp     CommandType = 20
	CmdAppStep       CommandType = 21
	CmdAppAction     CommandType = 22
	CmdRemoveApp     CommandType = 23
	CmdCloneApp      CommandType = 24
	CmdCleanupDone   CommandType = 25
	CmdAdoptApp      CommandType = 26
	CmdSetResources  CommandType = 27
	CmdRemoveNode    CommandType = 28
	CmdSealCA        CommandType = 29
	// Identity (users, tokens, passwords, sessions).
	CmdUpdateUser  CommandType = 30
	CmdDeleteUser  CommandType = 31
	CmdRevokeToken CommandType = 32
	CmdSetPassword CommandType = 33
	CmdSetTOTP     CommandType = 34
	CmdSetOIDC     CommandType = 38
	CmdOIDCUser    CommandType = 39
	// Quotas.
	CmdSetQuotas CommandType = 35
	// The audit log.
	CmdAudit          CommandType = 36
	CmdSetAuditPolicy CommandType = 37
	// Cancel and stage deadlines (cancel.go).
	CmdCancelApp  CommandType = 42
	CmdExpireTask CommandType = 43
	// Placement and node addresses.
	CmdSetPlacement   CommandType = 44
	CmdSetNodeAddress CommandType = 45
	// Catalog sources (catalog.go).
	CmdAddCatalogSource    CommandType = 50
	CmdRemoveCatalogSource CommandType = 51
	CmdCatalogFetched      CommandType = 52
	// Moving an app to another node (move.go).
	CmdMoveApp  CommandType = 62
	CmdMoveStep CommandType = 63
	// Updates (updates.go).
	CmdSetUpdatePolicy CommandType = 58
	CmdUpdateNotice    CommandType = 59
	CmdAutoUpdate      CommandType = 60
	// Scheduled backups and retention (backups.go).
	CmdSetBackupPolicy   CommandType = 54
	CmdSetBackupDefaults CommandType = 55
	CmdBackupSchedule    CommandType = 56
	CmdPruneBackup       CommandType = 57
)

// batchVersion is the first byte of every log entry this version writes.
const batchVersion byte = 1

// Command is one state change. Exactly the payload named by Type is set.
type Command struct {
	Type      CommandType `json:"type"`
	RequestID string      `json:"request_id"`

	Reserve      *ReserveCmd       `json:"reserve,omitempty"`
	Release      *ReleaseCmd       `json:"release,omitempty"`
	Foreign      *ForeignCmd       `json:"foreign,omitempty"`
	InitAdmin    *InitAdminCmd     `json:"init_admin,omitempty"`
	CreateUser   *CreateUserCmd    `json:"create_user,omitempty"`
	CreateToken  *CreateTokenCmd   `json:"create_token,omitempty"`
	SetNetwork   *NetworkSettings  `json:"set_network,omitempty"`
	SetPools     *PoolSettings     `json:"set_pools,omitempty"`
	UpsertServer *Server           `json:"upsert_server,omitempty"`
	RemoveServer *RemoveServerCmd  `json:"remove_server,omitempty"`
	SetCA        *CAState          `json:"set_ca,omitempty"`
	SealCA       *CAState          `json:"seal_ca,omitempty"`
	UpdateUser   *UpdateUserCmd    `json:"update_user,omitempty"`
	DeleteUser   *DeleteUserCmd    `json:"delete_user,omitempty"`
	RevokeToken  *RevokeTokenCmd   `json:"revoke_token,omitempty"`
	SetPassword  *SetPasswordCmd   `json:"set_password,omitempty"`
	SetTOTP      *SetTOTPCmd       `json:"set_totp,omitempty"`
	JoinToken    *JoinToken        `json:"join_token,omitempty"`
	JoinNode     *JoinNodeCmd      `json:"join_node,omitempty"`
	NodeStatus   *NodeStatusCmd    `json:"node_status,omitempty"`
	CreateTask   *Task             `json:"create_task,omitempty"`
	CompleteTask *CompleteTaskCmd  `json:"complete_task,omitempty"`
	ReissueTask  *ReissueTaskCmd   `json:"reissue_task,omitempty"`
	SetCatalog   *CatalogState     `json:"set_catalog,omitempty"`
	CreateApp    *CreateAppCmd     `json:"create_app,omitempty"`
	AppStep      *AppStepCmd       `json:"app_step,omitempty"`
	AppAction    *AppActionCmd     `json:"app_action,omitempty"`
	RemoveApp    *RemoveAppCmd     `json:"remove_app,omitempty"`
	CloneApp     *CloneAppCmd      `json:"clone_app,omitempty"`
	CleanupDone  *CleanupDoneCmd   `json:"cleanup_done,omitempty"`
	AdoptApp     *AdoptAppCmd      `json:"adopt_app,omitempty"`
	SetResources *ResourceSettings `json:"set_resources,omitempty"`
	SetQuotas    *Quota            `json:"set_quotas,omitempty"`
	RemoveNode   *RemoveNodeCmd    `json:"remove_node,omitempty"`
	// Audit and SetAuditPolicy: the audit log (audit.go).
	Audit          *AuditCmd          `json:"audit,omitempty"`
	SetAuditPolicy *SetAuditPolicyCmd `json:"set_audit_policy,omitempty"`
	// SetOIDC and OIDCLogin: single sign-on (oidc.go).
	SetOIDC   *OIDCSettings `json:"set_oidc,omitempty"`
	OIDCLogin *OIDCLoginCmd `json:"oidc_login,omitempty"`
	// CancelApp and ExpireTask: cancel and stage deadlines (cancel.go).
	CancelApp  *CancelAppCmd  `json:"cancel_app,omitempty"`
	ExpireTask *ExpireTaskCmd `json:"expire_task,omitempty"`
	// SetPlacement: how deploys are placed (placement.go).
	SetPlacement *PlacementSettings `json:"set_placement,omitempty"`
	// SetNodeAddress: the address a node's apps are reached at (agents.go).
	SetNodeAddress *SetNodeAddressCmd `json:"set_node_address,omitempty"`
	// Catalog sources (catalog.go).
	AddCatalogSource    *AddCatalogSourceCmd    `json:"add_catalog_source,omitempty"`
	RemoveCatalogSource *RemoveCatalogSourceCmd `json:"remove_catalog_source,omitempty"`
	CatalogFetched      *CatalogFetchedCmd      `json:"catalog_fetched,omitempty"`
	// MoveApp and MoveStep: moving an app to another node (move.go).
	MoveApp  *MoveAppCmd  `json:"move_app,omitempty"`
	MoveStep *MoveStepCmd `json:"move_step,omitempty"`
	// SetUpdatePolicy, UpdateNotice and AutoUpdate: updates (updates.go).
	SetUpdatePolicy *SetUpdatePolicyCmd `json:"set_update_policy,omitempty"`
	UpdateNotice    *UpdateNoticeCmd    `json:"update_notice,omitempty"`
	AutoUpdate      *AutoUpdateCmd      `json:"auto_update,omitempty"`
	// SetBackupPolicy, SetBackupDefaults and BackupSchedule: scheduled
	// backups and retention (backups.go).
	SetBackupPolicy   *SetBackupPolicyCmd `json:"set_backup_policy,omitempty"`
	SetBackupDefaults *BackupSettings     `json:"set_backup_defaults,omitempty"`
	BackupSchedule    *BackupScheduleCmd  `json:"backup_schedule,omitempty"`
	PruneBackup       *PruneBackupCmd     `json:"prune_backup,omitempty"`
}

// ReserveCmd reserves a VMID, PublicPorts ports on Node, Hostname and, if
// IP, an address, for Owner. ID and CreatedAt are filled in by the server
// that accepted the request.
type ReserveCmd struct {
	ID          string    `json:"id"`
	Hostname    string    `json:"hostname"`
	Node        string    `json:"node"`
	PublicPorts int       `json:"public_ports"`
	IP          bool      `json:"ip"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	// FixedVMID takes this VMID (an existing container being adopted; it
	// may be foreign) instead of one from the pool.
	FixedVMID int `json:"fixed_vmid,omitempty"`
	// standby: the reservation of a move's new container, which shares
	// the app's hostname without holding it (move.go). Set only by the
	// FSM, never read from a command.
	standby bool
}

// ReleaseCmd frees everything reservation ID holds.
type ReleaseCmd struct {
	ID string `json:"id"`
}

// ForeignCmd marks (or unmarks) VMIDs used outside Proximity.
type ForeignCmd struct {
	VMIDs []int `json:"vmids"`
}

// InitAdminCmd creates the first admin user and its token. It succeeds
// only while no admin exists.
type InitAdminCmd struct {
	User  User  `json:"user"`
	Token Token `json:"token"`
}

// CreateUserCmd creates a user.
type CreateUserCmd struct {
	User User `json:"user"`
}

// CreateTokenCmd creates an API token for an existing user.
type CreateTokenCmd struct {
	Token Token `json:"token"`
}

// RemoveServerCmd forgets a coordinator server and tombstones its boot ID
// so that the same incarnation is never added back automatically.
type RemoveServerCmd struct {
	ID     string `json:"id"`
	BootID string `json:"boot_id"`
}

// Result is the answer to one command. It is stored in the dedup table, so
// it must survive a JSON round trip.
type Result struct {
	ErrKind     problem.Kind `json:"err_kind,omitempty"`
	ErrDetail   string       `json:"err_detail,omitempty"`
	ErrType     string       `json:"err_type,omitempty"` // the problem's own type, if it names one
	Reservation *Reservation `json:"reservation,omitempty"`
	User        *User        `json:"user,omitempty"`
	Token       *Token       `json:"token,omitempty"`
	Node        *NodeRecord  `json:"node,omitempty"`
	Task        *Task        `json:"task,omitempty"`
	App         *App         `json:"app,omitempty"`
	// Index is the log index of the entry that first applied the command.
	Index uint64 `json:"index"`
	// Replayed is true when the answer came from the dedup table. It is
	// not stored.
	Replayed bool `json:"-"`
}

// Err returns the result's error, or nil.
func (r Result) Err() error {
	if r.ErrDetail == "" && r.ErrKind == problem.Internal {
		return nil
	}
	return &problem.Error{Kind: r.ErrKind, Detail: r.ErrDetail, Type: r.ErrType}
}

func failure(err error) Result {
	var k problem.Kind = problem.Internal
	detail, typ := err.Error(), ""
	if pe, ok := err.(*problem.Error); ok {
		k, detail, typ = pe.Kind, pe.Detail, pe.Type
	}
	if detail == "" {
		detail = k.String()
	}
	return Result{ErrKind: k, ErrDetail: detail, ErrType: typ}
}

// EncodeBatch encodes commands as one log entry.
func EncodeBatch(cmds []Command) ([]byte, error) {
	b, err := json.Marshal(cmds)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return append([]byte{batchVersion}, b...), nil
}

// DecodeBatch decodes a log entry.
func DecodeBatch(data []byte) ([]Command, error) {
	if len(data) == 0 || data[0] != batchVersion {
		return nil, fmt.Errorf("decode batch: unknown entry version")
	}
	var cmds []Command
	if err := json.Unmarshal(data[1:], &cmds); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return cmds, nil
}

// fingerprint describes what a command asks for, without the fields the
// accepting server fills in (IDs, timestamps), so that a retry of the same
// request matches and a different request under the same ID does not.
func (c *Command) fingerprint() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(c.Type)))
	switch {
	case c.Reserve != nil:
		r := c.Reserve
		b.WriteString("|" + strings.ToLower(r.Hostname) + "|" + r.Node + "|" + strconv.Itoa(r.PublicPorts) +
			"|" + strconv.FormatBool(r.IP) + "|" + r.Owner)
	case c.Release != nil:
		b.WriteString("|" + c.Release.ID)
	case c.CreateUser != nil:
		b.WriteString("|" + c.CreateUser.User.Name + "|" + string(c.CreateUser.User.Role))
	case c.CreateToken != nil:
		b.WriteString("|" + c.CreateToken.Token.UserID)
	case c.Audit != nil:
		// The request ID is fresh for each batch; the count and the
		// first record's request ID tell a different batch apart
		// without keeping the records a second time in the dedup table.
		b.WriteString("|" + strconv.Itoa(len(c.Audit.Records)))
		if len(c.Audit.Records) > 0 {
			b.WriteString("|" + c.Audit.Records[0].RequestID)
		}
	case c.SetOIDC != nil:
		// The secret is sealed anew (a fresh nonce) each time a request
		// is tried: the key that sealed it stands for it.
		o := *c.SetOIDC
		if o.ClientSecret != nil {
			o.ClientSecret = &secrets.Sealed{KeyID: o.ClientSecret.KeyID}
		}
		raw, _ := json.Marshal(o)
		b.Write(raw)
	case c.AddCatalogSource != nil:
		// A retry fetches anew: the source it adds stands for it.
		raw, _ := json.Marshal(c.AddCatalogSource.Spec)
		b.Write(raw)
	case c.CatalogFetched != nil:
		f := c.CatalogFetched
		b.WriteString("|" + f.Name + "|" + f.From + "|" + f.Commit + "|" + f.Error + "|" + strconv.Itoa(len(f.Entries)) + "|" + f.At.String())
	case c.Foreign != nil:
		for _, v := range c.Foreign.VMIDs {
			b.WriteString("|" + strconv.Itoa(v))
		}
	default:
		// Other commands are configuration writes that carry their whole
		// content; their fingerprint is the content.
		raw, _ := json.Marshal(c)
		b.Write(raw)
	}
	return b.String()
}
