package prune

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"
)

// backupsOf makes backups from data: every 4 bytes are a backup taken
// that many seconds (times 37, spreading them over about five years)
// after 2022-01-01 UTC, with a unique ID.
func backupsOf(data []byte) []Backup {
	base := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []Backup
	for i := 0; i+4 <= len(data) && len(out) < 200; i += 4 {
		s := binary.LittleEndian.Uint32(data[i:]) % (5 * 365 * 86400 / 37)
		out = append(out, Backup{ID: fmt.Sprintf("b%03d", len(out)), Time: base.Add(time.Duration(s) * 37 * time.Second)})
	}
	return out
}

var zones = []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"}

// FuzzDecide: every backup gets exactly one mark, Keep or Remove; with no
// rule all are kept; otherwise the newest is kept, no more are kept than
// the rules' counts add up to, keep-last alone keeps exactly the newest
// N; the decision does not depend on the order backups are given in;
// pruning what was kept keeps all of it (the policy is idempotent); and
// Removed lists exactly the removed ones, newest first.
func FuzzDecide(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x00\x10\x00\x00\x00\x00\x10\x00\x00\x00\x00\x10\x00"), uint8(1), uint8(0), uint8(1), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("abcdefghijklmnopqrstuvwxyz0123456789"), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(1))
	f.Add([]byte("abcdabcdabceabcfzzzzyyyy"), uint8(2), uint8(3), uint8(7), uint8(4), uint8(6), uint8(1), uint8(2))
	f.Add([]byte("\xff\xff\xff\xff\x00\x01\x02\x03\x01\x01\x01\x01\x00\x00\x00\x01"), uint8(0), uint8(24), uint8(0), uint8(0), uint8(12), uint8(0), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, last, hourly, daily, weekly, monthly, yearly, zone uint8) {
		backups := backupsOf(data)
		r := Retention{KeepLast: int(last % 10), KeepHourly: int(hourly % 10), KeepDaily: int(daily % 10),
			KeepWeekly: int(weekly % 10), KeepMonthly: int(monthly % 10), KeepYearly: int(yearly % 10)}
		loc, err := time.LoadLocation(zones[int(zone)%len(zones)])
		if err != nil {
			t.Skip(err) // no time zone database
		}
		marks := Decide(backups, r, loc)
		if len(marks) != len(backups) {
			t.Fatalf("%d marks for %d backups", len(marks), len(backups))
		}
		newest := slices.Clone(backups)
		slices.SortStableFunc(newest, func(a, b Backup) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return -cmpString(a.ID, b.ID)
		})
		var kept, removed []Backup
		for _, b := range newest {
			switch marks[b.ID] {
			case Keep:
				kept = append(kept, b)
			case Remove:
				removed = append(removed, b)
			default:
				t.Fatalf("%s is marked %v", b.ID, marks[b.ID])
			}
		}
		if r.KeepAll() {
			if len(removed) != 0 {
				t.Fatalf("no rule, yet %d removed", len(removed))
			}
			return
		}
		if len(backups) > 0 && marks[newest[0].ID] != Keep {
			t.Fatalf("the newest backup %s is removed under %+v", newest[0].ID, r)
		}
		if sum := r.KeepLast + r.KeepHourly + r.KeepDaily + r.KeepWeekly + r.KeepMonthly + r.KeepYearly; len(kept) > sum {
			t.Fatalf("%d kept, more than the %d the rules allow", len(kept), sum)
		}
		if r == (Retention{KeepLast: r.KeepLast}) {
			if n := min(r.KeepLast, len(newest)); !slices.Equal(kept, newest[:n]) {
				t.Fatalf("keep-last %d kept %v, not the newest %d", r.KeepLast, ids(kept), n)
			}
		}
		reversed := slices.Clone(backups)
		slices.Reverse(reversed)
		if again := Decide(reversed, r, loc); !mapsEqual(again, marks) {
			t.Fatalf("the decision depends on the order: %v, reversed %v", marks, again)
		}
		for id, m := range Decide(kept, r, loc) {
			if m != Keep {
				t.Fatalf("pruning the kept set %v again removes %s under %+v", ids(kept), id, r)
			}
		}
		if got := Removed(backups, r, loc); !slices.Equal(got, ids(removed)) {
			t.Fatalf("Removed = %v, want %v", got, ids(removed))
		}
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ids(list []Backup) []string {
	out := []string{}
	for _, b := range list {
		out = append(out, b.ID)
	}
	return out
}

func mapsEqual(a, b map[string]Mark) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
