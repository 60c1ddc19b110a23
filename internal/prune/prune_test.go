package prune

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// backups makes backups named after their times.
func backups(times ...string) []Backup {
	var out []Backup
	for _, s := range times {
		out = append(out, Backup{ID: s, Time: at(s)})
	}
	return out
}

func kept(bs []Backup, r Retention, loc *time.Location) []string {
	marks := Decide(bs, r, loc)
	var out []string
	for _, b := range bs {
		if marks[b.ID] == Keep {
			out = append(out, b.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		bs   []Backup
		r    Retention
		want []string
	}{
		{"no rule keeps all", backups("2026-01-01 02:00", "2026-01-02 02:00", "2026-01-03 02:00"), Retention{},
			[]string{"2026-01-01 02:00", "2026-01-02 02:00", "2026-01-03 02:00"}},
		{"keep-last keeps the newest", backups("2026-01-01 02:00", "2026-01-02 02:00", "2026-01-03 02:00", "2026-01-04 02:00", "2026-01-05 02:00"),
			Retention{KeepLast: 3}, []string{"2026-01-03 02:00", "2026-01-04 02:00", "2026-01-05 02:00"}},
		{"keep-daily keeps the latest of each day", backups("2026-01-01 02:00", "2026-01-01 14:00", "2026-01-02 02:00", "2026-01-02 09:00", "2026-01-03 02:00"),
			Retention{KeepDaily: 2}, []string{"2026-01-02 09:00", "2026-01-03 02:00"}},
		{"keep-hourly", backups("2026-01-01 02:00", "2026-01-01 02:30", "2026-01-01 03:10", "2026-01-01 03:50", "2026-01-01 04:05"),
			Retention{KeepHourly: 2}, []string{"2026-01-01 03:50", "2026-01-01 04:05"}},
		// keep-last keeps 01-03 10:00; the day 01-03 is then covered, so
		// keep-daily does not count it again and keeps 01-02 and 01-01;
		// 01-03 08:00 is in a covered day and is removed.
		{"a period an earlier rule covered does not count again", backups("2026-01-01 12:00", "2026-01-02 12:00", "2026-01-03 08:00", "2026-01-03 10:00"),
			Retention{KeepLast: 1, KeepDaily: 2}, []string{"2026-01-01 12:00", "2026-01-02 12:00", "2026-01-03 10:00"}},
		// 2020-12-31 (Thursday) and 2021-01-03 (Sunday) are both in ISO week 53 of 2020.
		{"keep-weekly uses ISO weeks across the new year", backups("2020-12-27 02:00", "2020-12-31 02:00", "2021-01-03 02:00", "2021-01-04 02:00"),
			Retention{KeepWeekly: 2}, []string{"2021-01-03 02:00", "2021-01-04 02:00"}},
		{"keep-monthly and keep-yearly", backups("2024-11-30 02:00", "2024-12-15 02:00", "2024-12-31 02:00", "2025-01-10 02:00", "2025-02-01 02:00"),
			Retention{KeepMonthly: 2, KeepYearly: 1}, []string{"2024-12-31 02:00", "2025-01-10 02:00", "2025-02-01 02:00"}},
		{"fewer backups than the rule asks for", backups("2026-01-01 02:00", "2026-01-02 02:00"),
			Retention{KeepLast: 10}, []string{"2026-01-01 02:00", "2026-01-02 02:00"}},
		{"no backups", nil, Retention{KeepLast: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kept(tt.bs, tt.r, time.UTC); !slices.Equal(got, tt.want) {
				t.Errorf("kept %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDecideTimeZone: periods are read in the given zone. 23:30 UTC and
// 00:30 UTC the next day are two days in UTC but one day in Berlin.
func TestDecideTimeZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	bs := backups("2026-01-01 23:30", "2026-01-02 00:30")
	r := Retention{KeepDaily: 2}
	if got := kept(bs, r, time.UTC); len(got) != 2 {
		t.Errorf("UTC kept %q, want both", got)
	}
	if got := kept(bs, r, berlin); !slices.Equal(got, []string{"2026-01-02 00:30"}) {
		t.Errorf("Berlin kept %q, want only the later one", got)
	}
}

// TestDecideAdminGuideExample is the retention example of Proxmox VE's admin
// guide ("Backup Retention"): daily backups and
// keep-last=3,keep-daily=13,keep-weekly=8,keep-monthly=11,keep-yearly=9 —
// the last 3 backups, 13 more days, 8 more weeks, 11 more months and the
// years before, here three years of backups at 02:00 ending on Wednesday
// 2025-12-31.
func TestDecideAdminGuideExample(t *testing.T) {
	var bs []Backup
	for d := at("2023-01-01 02:00"); !d.After(at("2025-12-31 02:00")); d = d.AddDate(0, 0, 1) {
		bs = append(bs, Backup{ID: d.Format("2006-01-02"), Time: d})
	}
	r := Retention{KeepLast: 3, KeepDaily: 13, KeepWeekly: 8, KeepMonthly: 11, KeepYearly: 9}
	want := []string{
		// keep-last: the 3 newest.
		"2025-12-29", "2025-12-30", "2025-12-31",
		// keep-daily: 13 more days.
		"2025-12-16", "2025-12-17", "2025-12-18", "2025-12-19", "2025-12-20", "2025-12-21", "2025-12-22",
		"2025-12-23", "2025-12-24", "2025-12-25", "2025-12-26", "2025-12-27", "2025-12-28",
		// keep-weekly: weeks 2026-W01, 2025-W52 and W51 are covered; the
		// Sundays of the 8 weeks before.
		"2025-10-26", "2025-11-02", "2025-11-09", "2025-11-16", "2025-11-23", "2025-11-30", "2025-12-07", "2025-12-14",
		// keep-monthly: October to December 2025 are covered; the last
		// day of the 11 months before.
		"2024-11-30", "2024-12-31", "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31",
		"2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30",
		// keep-yearly: 2025 and 2024 are covered; 2023's last backup (there
		// are no older years).
		"2023-12-31",
	}
	slices.Sort(want)
	got := kept(bs, r, time.UTC)
	if !slices.Equal(got, want) {
		t.Errorf("kept %d:\n%s\nwant %d:\n%s", len(got), strings.Join(got, " "), len(want), strings.Join(want, " "))
	}
	if n := len(Removed(bs, r, time.UTC)); n != len(bs)-len(want) {
		t.Errorf("Removed lists %d, want %d", n, len(bs)-len(want))
	}
}

// TestDecideRemovedNewestFirst: Removed lists the removed backups newest first.
func TestDecideRemovedNewestFirst(t *testing.T) {
	bs := backups("2026-01-01 02:00", "2026-01-03 02:00", "2026-01-02 02:00", "2026-01-04 02:00")
	got := Removed(bs, Retention{KeepLast: 1}, nil)
	want := []string{"2026-01-03 02:00", "2026-01-02 02:00", "2026-01-01 02:00"}
	if !slices.Equal(got, want) {
		t.Errorf("Removed = %q, want %q", got, want)
	}
}
