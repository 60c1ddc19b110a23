package fsm

import (
	"encoding/json"
	"fmt"
	"sort"
)

// State is everything the FSM holds. Exported fields are the snapshot;
// unexported fields are indexes rebuilt from them on restore.
type State struct {
	// Index is the log index of the last applied entry.
	Index uint64 `json:"index"`
	// Seq numbers reservations in the order they were made.
	Seq uint64 `json:"seq"`

	Pools        PoolSettings            `json:"pools"`
	Network      NetworkSettings         `json:"network"`
	Reservations map[string]*Reservation `json:"reservations"`
	Foreign      []int                   `json:"foreign"` // sorted
	VMIDCursor   int                     `json:"vmid_cursor"`
	PortCursor   map[string]int          `json:"port_cursor"`
	IPCursor     uint32                  `json:"ip_cursor"`

	Users   map[string]*User   `json:"users"`
	Tokens  map[string]*Token  `json:"tokens"`
	Servers map[string]*Server `json:"servers"`
	// Tombstones are removed servers' boot IDs, by server ID.
	Tombstones map[string]string `json:"tombstones"`

	CA         *CAState               `json:"ca,omitempty"`
	JoinTokens map[string]*JoinToken  `json:"join_tokens"` // by hash
	Nodes      map[string]*NodeRecord `json:"nodes"`
	Tasks      map[string]*Task       `json:"tasks"`
	TaskSeq    uint64                 `json:"task_seq"`
	Catalog    *CatalogState          `json:"catalog,omitempty"`
	// CatalogSources are the catalog sources an admin added, by name
	// (catalog.go); the builtin source is Catalog.
	CatalogSources map[string]*CatalogSource `json:"catalog_sources,omitempty"`
	Apps           map[string]*App           `json:"apps"`
	Backups        map[string]*Backup        `json:"backups"`
	Cleanups       map[string]*Cleanup       `json:"cleanups"`
	Resources      *ResourceSettings         `json:"resources,omitempty"`
	Quotas         *Quota                    `json:"quotas,omitempty"` // the default quota; nil is unlimited
	// Placement chooses nodes for deploys (placement.go); nil is the
	// default.
	Placement *PlacementSettings `json:"placement,omitempty"`
	// OIDC is the single sign-on configuration (oidc.go); nil is off.
	OIDC *OIDCSettings `json:"oidc,omitempty"`
	// Scheduled backups and retention (backups.go): the default policy,
	// the apps' own policies, their scheduler state and the backups their
	// retention still has to delete, by app.
	BackupDefaults  *BackupSettings            `json:"backup_defaults,omitempty"`
	BackupPolicies  map[string]*BackupPolicy   `json:"backup_policies,omitempty"`
	BackupSchedules map[string]*BackupSchedule `json:"backup_schedules,omitempty"`
	PendingPrunes   map[string][]string        `json:"pending_prunes,omitempty"`

	// Audit is the audit log, oldest first; AuditSeq numbers its records.
	Audit       []AuditRecord `json:"audit"`
	AuditSeq    uint64        `json:"audit_seq"`
	AuditPolicy *AuditPolicy  `json:"audit_policy,omitempty"`

	Dedup map[string]*dedupEntry `json:"dedup"`

	byHostname map[string]string         // lower-case hostname → reservation ID
	byVMID     map[int]string            // VMID → reservation ID
	byPort     map[string]map[int]string // node → port → reservation ID
	byIP       map[uint32]string         // IPv4 → reservation ID
	foreign    map[int]bool
	byHash     map[string]string // token hash → token ID
	tasksAt    uint64            // index of the last change to any task
	dedupOrder []dedupRef        // request IDs in index order, for expiry
}

type dedupEntry struct {
	Index       uint64 `json:"index"`
	Fingerprint string `json:"fingerprint"`
	Result      Result `json:"result"`
}

type dedupRef struct {
	index uint64
	id    string
}

func newState() *State {
	s := &State{
		Pools:        DefaultPools(),
		Reservations: map[string]*Reservation{},
		PortCursor:   map[string]int{},
		Users:        map[string]*User{},
		Tokens:       map[string]*Token{},
		Servers:      map[string]*Server{},
		Tombstones:   map[string]string{},
		Dedup:        map[string]*dedupEntry{},
		JoinTokens:   map[string]*JoinToken{},
		Nodes:        map[string]*NodeRecord{},
		Tasks:        map[string]*Task{},
		Apps:         map[string]*App{},
		Backups:      map[string]*Backup{},
		Cleanups:     map[string]*Cleanup{},
	}
	s.reindex()
	return s
}

// reindex rebuilds the derived indexes from the exported fields.
func (s *State) reindex() {
	s.byHostname = map[string]string{}
	s.byVMID = map[int]string{}
	s.byPort = map[string]map[int]string{}
	s.byIP = map[uint32]string{}
	s.foreign = map[int]bool{}
	s.byHash = map[string]string{}
	for id, r := range s.Reservations {
		s.index(id, r)
	}
	for _, v := range s.Foreign {
		s.foreign[v] = true
	}
	for id, t := range s.Tokens {
		s.byHash[t.Hash] = id
	}
	s.tasksAt = s.Index
	s.dedupOrder = s.dedupOrder[:0]
	for id, d := range s.Dedup {
		s.dedupOrder = append(s.dedupOrder, dedupRef{d.Index, id})
	}
	sort.Slice(s.dedupOrder, func(i, j int) bool {
		a, b := s.dedupOrder[i], s.dedupOrder[j]
		return a.index < b.index || (a.index == b.index && a.id < b.id)
	})
}

func (s *State) remember(index uint64, rid, fp string, r Result) {
	s.Dedup[rid] = &dedupEntry{Index: index, Fingerprint: fp, Result: r}
	s.dedupOrder = append(s.dedupOrder, dedupRef{index, rid})
}

// forgetBefore drops dedup entries more than window indexes older than
// index. The order slice is sorted by index, so this is amortized O(1).
func (s *State) forgetBefore(index, window uint64) {
	if index <= window {
		return
	}
	cut := index - window
	n := 0
	for n < len(s.dedupOrder) && s.dedupOrder[n].index <= cut {
		delete(s.Dedup, s.dedupOrder[n].id)
		n++
	}
	if n > 0 {
		s.dedupOrder = append(s.dedupOrder[:0], s.dedupOrder[n:]...)
	}
}

func (s *State) encode() ([]byte, error) {
	// encoding/json writes map keys sorted, so equal states encode to
	// equal bytes.
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return b, nil
}

func decodeState(data []byte) (*State, error) {
	s := newState()
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	// A table that was empty when the snapshot was taken may decode as
	// nil; the state always has every table.
	if s.Reservations == nil {
		s.Reservations = map[string]*Reservation{}
	}
	if s.PortCursor == nil {
		s.PortCursor = map[string]int{}
	}
	if s.Users == nil {
		s.Users = map[string]*User{}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]*Token{}
	}
	if s.Servers == nil {
		s.Servers = map[string]*Server{}
	}
	if s.Tombstones == nil {
		s.Tombstones = map[string]string{}
	}
	if s.Dedup == nil {
		s.Dedup = map[string]*dedupEntry{}
	}
	if s.JoinTokens == nil {
		s.JoinTokens = map[string]*JoinToken{}
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeRecord{}
	}
	if s.Tasks == nil {
		s.Tasks = map[string]*Task{}
	}
	if s.Apps == nil {
		s.Apps = map[string]*App{}
	}
	if s.Backups == nil {
		s.Backups = map[string]*Backup{}
	}
	if s.Cleanups == nil {
		s.Cleanups = map[string]*Cleanup{}
	}
	s.reindex()
	return s, nil
}
