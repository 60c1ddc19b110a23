package fsm

import (
	"fmt"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// ProblemQuotaExceeded is the problem type of a refusal by a quota; its
// kind is Conflict (409).
const ProblemQuotaExceeded = "quota-exceeded"

// maxQuotaLimit bounds each limit of a quota: far above any cluster, low
// enough that sums of usage never come near overflowing.
const maxQuotaLimit = 1 << 30

// Validate checks a quota: every limit is 0 (unlimited) to 2^30. It is
// what every command that stores a quota (the default, a user's own)
// calls; the fields are checked in a fixed order so that every replica
// answers with the same detail.
func (q Quota) Validate() error {
	for _, f := range q.limits() {
		if f.max < 0 || f.max > maxQuotaLimit {
			return problem.E(problem.Invalid, "%s: %d must be 0 (unlimited) to %d", f.name, f.max, maxQuotaLimit)
		}
	}
	return nil
}

// Usage is what a user's apps hold: every app record of the user counts,
// whatever its status, until the app is deleted (removed from the state).
type Usage struct {
	Apps     int `json:"apps"`
	Cores    int `json:"cores"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

type quotaLimit struct {
	name           string
	max, used, add int
}

// limits lists the quota's limits in the order they are checked.
func (q Quota) limits() []quotaLimit {
	return []quotaLimit{
		{name: "max_apps", max: q.MaxApps},
		{name: "max_cores", max: q.MaxCores},
		{name: "max_memory_mb", max: q.MaxMemoryMB},
		{name: "max_disk_gb", max: q.MaxDiskGB},
	}
}

// Allows returns nil if one more app with resources add fits in the quota
// next to used, or a Conflict of type ProblemQuotaExceeded naming the
// first limit it would pass and the usage.
func (q Quota) Allows(used Usage, add catalog.Resources) error {
	ls := q.limits()
	ls[0].used, ls[0].add = used.Apps, 1
	ls[1].used, ls[1].add = used.Cores, add.Cores
	ls[2].used, ls[2].add = used.MemoryMB, add.MemoryMB
	ls[3].used, ls[3].add = used.DiskGB, add.DiskGB
	for _, l := range ls {
		if l.max > 0 && l.used+l.add > l.max {
			return &problem.Error{Kind: problem.Conflict, Type: ProblemQuotaExceeded,
				Detail: fmt.Sprintf("quota exceeded: %s %d, in use %d (this request adds %d)", l.name, l.max, l.used, l.add)}
		}
	}
	return nil
}

// DefaultQuota returns the quota of users that have none of their own.
func (s *State) DefaultQuota() Quota {
	if s.Quotas == nil {
		return Quota{}
	}
	return *s.Quotas
}

// QuotaFor returns the quota in force for a user: its own, else the
// default.
func (s *State) QuotaFor(userID string) Quota {
	if u, ok := s.Users[userID]; ok && u.Quota != nil {
		return *u.Quota
	}
	return s.DefaultQuota()
}

// UsageOf sums what the user's apps hold.
func (s *State) UsageOf(userID string) Usage {
	var u Usage
	for _, a := range s.Apps {
		if a.Owner != userID {
			continue
		}
		u.Apps++
		u.Cores += a.Resources.Cores
		u.MemoryMB += a.Resources.MemoryMB
		u.DiskGB += a.Resources.DiskGB
	}
	return u
}

// checkQuota is the check of the commands that make an app: it runs in
// the same apply as the reservation, before anything is changed, so
// commands are checked one after another in log order and a refused one
// holds nothing.
func (s *State) checkQuota(owner string, add catalog.Resources) error {
	return s.QuotaFor(owner).Allows(s.UsageOf(owner), add)
}

func (s *State) setQuotas(q Quota) error {
	if err := q.Validate(); err != nil {
		return err
	}
	s.Quotas = &q
	return nil
}
