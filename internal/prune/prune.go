// Package prune decides which backups a retention policy keeps, with
// Proxmox's prune rules (PVE's prune-backups, Proxmox Backup Server's
// prune): keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly and
// keep-yearly.
//
// The algorithm, as Proxmox implements it:
//
//  1. With no rule above zero, every backup is kept (Proxmox's keep-all).
//  2. Backups are sorted newest first.
//  3. The rules run in the order above. Each rule puts every backup in a
//     period — the backup itself for keep-last, its hour, day, ISO week
//     (Monday to Sunday, the ISO week-numbering year), month or year — read
//     in the given time zone. A period that already holds a backup kept by
//     an earlier rule is covered and does not count again. Walking the
//     backups newest first, a rule keeps the newest backup of each period
//     it has not seen yet, until it has kept N periods; the older backups of
//     a period it kept are removed (later rules do not see them again).
//     Backups the rule did not reach are left to the next rule.
//  4. Whatever no rule kept is removed.
package prune

import (
	"fmt"
	"sort"
	"time"
)

// Retention is a retention policy. Zero values are unset.
type Retention struct {
	KeepLast    int `json:"keep_last"`
	KeepHourly  int `json:"keep_hourly"`
	KeepDaily   int `json:"keep_daily"`
	KeepWeekly  int `json:"keep_weekly"`
	KeepMonthly int `json:"keep_monthly"`
	KeepYearly  int `json:"keep_yearly"`
}

// KeepAll reports whether the policy keeps every backup (no rule is set).
func (r Retention) KeepAll() bool {
	return r.KeepLast <= 0 && r.KeepHourly <= 0 && r.KeepDaily <= 0 && r.KeepWeekly <= 0 && r.KeepMonthly <= 0 && r.KeepYearly <= 0
}

// Backup is one backup to decide on.
type Backup struct {
	ID   string
	Time time.Time
}

// Mark is a decision on one backup.
type Mark int

// The decisions.
const (
	Keep Mark = iota + 1
	Remove
)

func (m Mark) String() string {
	switch m {
	case Keep:
		return "keep"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("Mark(%d)", int(m))
}

// rule is one keep-* option: how many periods, and a backup's period.
type rule struct {
	keep   int
	period func(t time.Time) string
}

func (r Retention) rules() []rule {
	return []rule{
		{r.KeepLast, nil}, // every backup is its own period
		{r.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{r.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{r.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{r.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		{r.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	}
}

// Decide marks each backup Keep or Remove under the policy, reading times
// in loc (nil is UTC). The result maps backup ID to its mark. Backups with
// the same time are ordered by ID, so the decision is deterministic.
func Decide(backups []Backup, r Retention, loc *time.Location) map[string]Mark {
	if loc == nil {
		loc = time.UTC
	}
	marks := make(map[string]Mark, len(backups))
	if r.KeepAll() {
		for _, b := range backups {
			marks[b.ID] = Keep
		}
		return marks
	}
	list := append([]Backup(nil), backups...)
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return list[i].ID > list[j].ID
	})
	for _, ru := range r.rules() {
		if ru.keep <= 0 {
			continue
		}
		period := func(b Backup) string {
			if ru.period == nil {
				return b.ID
			}
			return ru.period(b.Time.In(loc))
		}
		covered := map[string]bool{}
		for _, b := range list {
			if marks[b.ID] == Keep {
				covered[period(b)] = true
			}
		}
		kept := map[string]bool{}
		for _, b := range list {
			if marks[b.ID] != 0 {
				continue
			}
			p := period(b)
			if covered[p] {
				continue
			}
			if kept[p] {
				marks[b.ID] = Remove
				continue
			}
			if len(kept) >= ru.keep {
				break
			}
			kept[p] = true
			marks[b.ID] = Keep
		}
	}
	for _, b := range list {
		if marks[b.ID] == 0 {
			marks[b.ID] = Remove
		}
	}
	return marks
}

// Removed lists, newest first, the IDs of the backups Decide removes.
func Removed(backups []Backup, r Retention, loc *time.Location) []string {
	marks := Decide(backups, r, loc)
	list := append([]Backup(nil), backups...)
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return list[i].ID > list[j].ID
	})
	var out []string
	for _, b := range list {
		if marks[b.ID] == Remove {
			out = append(out, b.ID)
		}
	}
	return out
}
