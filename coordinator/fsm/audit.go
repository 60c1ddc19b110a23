package fsm

import (
	"strconv"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// Audit retention defaults and bounds.
const (
	DefaultAuditMaxRecords = 10_000
	DefaultAuditMaxAge     = 90 * 24 * time.Hour
	MaxAuditMaxRecords     = 1_000_000
	MaxAuditMaxAge         = 10 * 365 * 24 * time.Hour
)

// AuditActor is who made an audited request. It is empty for a request
// that did not authenticate.
type AuditActor struct {
	UserID    string `json:"user_id,omitempty"`
	Name      string `json:"name,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// AuditRecord is one audited request. It never holds a request body, a
// password or a token secret: only the IDs named here.
type AuditRecord struct {
	// ID is assigned by the FSM ("aud_" and a sequence number), so it
	// orders records in the order they were applied.
	ID     string     `json:"id"`
	Time   time.Time  `json:"time"`
	Actor  AuditActor `json:"actor"`
	Source string     `json:"source"`
	Method string     `json:"method"`
	// Route is the route pattern, "DELETE /api/v1/apps/{id}".
	Route     string   `json:"route"`
	Targets   []string `json:"targets"`
	Status    int      `json:"status"`
	RequestID string   `json:"request_id"`
	// Action names what a read that is audited did ("app.secrets.read");
	// empty for the writes and refusals every route records.
	Action string `json:"action,omitempty"`
}

// AuditCmd appends records. Now is the proposing server's clock, against
// which records older than the policy's age are pruned: Apply reads no
// clock.
type AuditCmd struct {
	Records []AuditRecord `json:"records"`
	Now     time.Time     `json:"now"`
}

// AuditPolicy is the audit log's retention: at most MaxRecords records,
// none older than MaxAge.
type AuditPolicy struct {
	MaxRecords int           `json:"max_records"`
	MaxAge     time.Duration `json:"max_age"`
}

// SetAuditPolicyCmd sets the retention and prunes at once against Now.
type SetAuditPolicyCmd struct {
	Policy AuditPolicy `json:"policy"`
	Now    time.Time   `json:"now"`
}

// DefaultAuditPolicy is the retention until an admin sets one.
func DefaultAuditPolicy() AuditPolicy {
	return AuditPolicy{MaxRecords: DefaultAuditMaxRecords, MaxAge: DefaultAuditMaxAge}
}

// Validate checks the bounds.
func (p AuditPolicy) Validate() error {
	if p.MaxRecords < 1 || p.MaxRecords > MaxAuditMaxRecords {
		return problem.E(problem.Invalid, "max_records: %d outside 1-%d", p.MaxRecords, MaxAuditMaxRecords)
	}
	if p.MaxAge < time.Hour || p.MaxAge > MaxAuditMaxAge {
		return problem.E(problem.Invalid, "max_age: %s outside 1h-%s", p.MaxAge, MaxAuditMaxAge)
	}
	return nil
}

// AuditRetention returns the retention in force.
func (s *State) AuditRetention() AuditPolicy {
	if s.AuditPolicy == nil {
		return DefaultAuditPolicy()
	}
	return *s.AuditPolicy
}

func (s *State) appendAudit(c AuditCmd) error {
	for _, r := range c.Records {
		s.AuditSeq++
		r.ID = "aud_" + strconv.FormatUint(s.AuditSeq, 10)
		if r.Targets == nil {
			r.Targets = []string{}
		}
		s.Audit = append(s.Audit, r)
	}
	s.pruneAudit(c.Now)
	return nil
}

func (s *State) setAuditPolicy(c SetAuditPolicyCmd) error {
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	p := c.Policy
	s.AuditPolicy = &p
	s.pruneAudit(c.Now)
	return nil
}

// pruneAudit drops the oldest records beyond the count, then the records
// at the front that are older than the age, measured against now (a time
// carried in the command). Records are kept in the order they were
// applied; a record stamped earlier than one before it is dropped when
// the front reaches it, so pruning by age is a deterministic
// approximation that never drops a record younger than the age while an
// older one stays.
func (s *State) pruneAudit(now time.Time) {
	p := s.AuditRetention()
	n := 0
	if len(s.Audit) > p.MaxRecords {
		n = len(s.Audit) - p.MaxRecords
	}
	if !now.IsZero() {
		cut := now.Add(-p.MaxAge)
		for n < len(s.Audit) && s.Audit[n].Time.Before(cut) {
			n++
		}
	}
	if n > 0 {
		// Reslicing keeps the dropped prefix until the next append
		// reallocates; a full copy on every batch would cost more.
		s.Audit = s.Audit[n:]
	}
}

// AuditFilter selects records: Actor matches a user ID, user name, token
// ID or session ID; Target one of the targets; Since and Until bound the
// time (inclusive; zero is unbounded).
type AuditFilter struct {
	Actor, Target string
	// Action matches a record whose audited action or route contains it,
	// without regard to case ("users" finds POST /api/v1/users).
	Action       string
	Since, Until time.Time
}

func (f AuditFilter) match(r *AuditRecord) bool {
	if f.Actor != "" {
		a := r.Actor
		if a.UserID != f.Actor && a.Name != f.Actor && a.TokenID != f.Actor && a.SessionID != f.Actor {
			return false
		}
	}
	if f.Target != "" {
		found := false
		for _, t := range r.Targets {
			if t == f.Target {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.Action != "" {
		want := strings.ToLower(f.Action)
		if !strings.Contains(strings.ToLower(r.Action), want) && !strings.Contains(strings.ToLower(r.Route), want) {
			return false
		}
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && r.Time.After(f.Until) {
		return false
	}
	return true
}

// ListAudit returns one page of the records that match f, newest (last
// applied) first, and how many match.
func (s *State) ListAudit(f AuditFilter, page, perPage int) ([]AuditRecord, int) {
	var out []AuditRecord
	// The matches are fewer than the records, so bounds over all records
	// find the page's first match without an overflowing multiplication.
	skip, _ := validate.PageBounds(page, perPage, len(s.Audit))
	total := 0
	for i := len(s.Audit) - 1; i >= 0; i-- {
		r := &s.Audit[i]
		if !f.match(r) {
			continue
		}
		if total >= skip && len(out) < perPage {
			cp := *r
			cp.Targets = append([]string{}, r.Targets...)
			out = append(out, cp)
		}
		total++
	}
	return out, total
}
