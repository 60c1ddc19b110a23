package calendar

import (
	"strings"
	"testing"
	"time"
)

// base is a Wednesday: 2026-01-07 10:17:00 UTC.
var base = time.Date(2026, 1, 7, 10, 17, 0, 0, time.UTC)

func mustParse(t *testing.T, s string) *Event {
	t.Helper()
	ev, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return ev
}

// occurrences lists the first n occurrences after from, formatted in loc.
func occurrences(ev *Event, from time.Time, loc *time.Location, n int) []string {
	var out []string
	t := from
	for i := 0; i < n; i++ {
		t = ev.Next(t, loc)
		if t.IsZero() {
			out = append(out, "none")
			break
		}
		out = append(out, t.In(loc).Format("Mon 2006-01-02 15:04:05 MST"))
	}
	return out
}

// TestProxmoxDocumentedExamples runs the examples of the "Schedule Format"
// section of Proxmox VE's admin guide and of Proxmox Backup Server's
// "Calendar Events" (the description there is the expected meaning).
func TestProxmoxDocumentedExamples(t *testing.T) {
	tests := []struct {
		event string
		from  time.Time
		want  []string
	}{
		// mon..fri: all working days at 00:00.
		{"mon..fri", base, []string{"Thu 2026-01-08 00:00:00 UTC", "Fri 2026-01-09 00:00:00 UTC", "Mon 2026-01-12 00:00:00 UTC"}},
		{"mon,tue,wed,thu,fri", base, []string{"Thu 2026-01-08 00:00:00 UTC", "Fri 2026-01-09 00:00:00 UTC", "Mon 2026-01-12 00:00:00 UTC"}},
		// sat..sun: weekends at 00:00.
		{"sat..sun", base, []string{"Sat 2026-01-10 00:00:00 UTC", "Sun 2026-01-11 00:00:00 UTC", "Sat 2026-01-17 00:00:00 UTC"}},
		{"sat,sun", base, []string{"Sat 2026-01-10 00:00:00 UTC", "Sun 2026-01-11 00:00:00 UTC", "Sat 2026-01-17 00:00:00 UTC"}},
		{"mon,wed,fri", base, []string{"Fri 2026-01-09 00:00:00 UTC", "Mon 2026-01-12 00:00:00 UTC", "Wed 2026-01-14 00:00:00 UTC"}},
		// 12:05: every day at 12:05.
		{"12:05", base, []string{"Wed 2026-01-07 12:05:00 UTC", "Thu 2026-01-08 12:05:00 UTC"}},
		// */5 and 0/5: every five minutes.
		{"*/5", base, []string{"Wed 2026-01-07 10:20:00 UTC", "Wed 2026-01-07 10:25:00 UTC", "Wed 2026-01-07 10:30:00 UTC"}},
		{"0/5", base, []string{"Wed 2026-01-07 10:20:00 UTC", "Wed 2026-01-07 10:25:00 UTC", "Wed 2026-01-07 10:30:00 UTC"}},
		// mon..wed 30/10: 30, 40 and 50 minutes after every full hour, Monday to Wednesday.
		{"mon..wed 30/10", time.Date(2026, 1, 7, 22, 41, 0, 0, time.UTC), []string{
			"Wed 2026-01-07 22:50:00 UTC", "Wed 2026-01-07 23:30:00 UTC", "Wed 2026-01-07 23:40:00 UTC",
			"Wed 2026-01-07 23:50:00 UTC", "Mon 2026-01-12 00:30:00 UTC"}},
		// mon..fri 8..17,22:0/15: every 15 minutes between 8 and 18 and between 22 and 23 on working days.
		{"mon..fri 8..17,22:0/15", time.Date(2026, 1, 9, 17, 40, 0, 0, time.UTC), []string{
			"Fri 2026-01-09 17:45:00 UTC", "Fri 2026-01-09 22:00:00 UTC", "Fri 2026-01-09 22:15:00 UTC",
			"Fri 2026-01-09 22:30:00 UTC", "Fri 2026-01-09 22:45:00 UTC", "Mon 2026-01-12 08:00:00 UTC"}},
		// fri 12..13:5/20: Friday at 12:05, 12:25, 12:45, 13:05, 13:25 and 13:45.
		{"fri 12..13:5/20", base, []string{
			"Fri 2026-01-09 12:05:00 UTC", "Fri 2026-01-09 12:25:00 UTC", "Fri 2026-01-09 12:45:00 UTC",
			"Fri 2026-01-09 13:05:00 UTC", "Fri 2026-01-09 13:25:00 UTC", "Fri 2026-01-09 13:45:00 UTC",
			"Fri 2026-01-16 12:05:00 UTC"}},
		// 12,14,16,18,20,22:5 and 12/2:5: every two hours from 12:05 to 22:05.
		{"12/2:5", time.Date(2026, 1, 7, 21, 0, 0, 0, time.UTC), []string{"Wed 2026-01-07 22:05:00 UTC", "Thu 2026-01-08 12:05:00 UTC", "Thu 2026-01-08 14:05:00 UTC"}},
		{"12,14,16,18,20,22:5", time.Date(2026, 1, 7, 21, 0, 0, 0, time.UTC), []string{"Wed 2026-01-07 22:05:00 UTC", "Thu 2026-01-08 12:05:00 UTC", "Thu 2026-01-08 14:05:00 UTC"}},
		// *: every minute.
		{"*", base, []string{"Wed 2026-01-07 10:18:00 UTC", "Wed 2026-01-07 10:19:00 UTC"}},
		// *-05: on the 5th day of every month.
		{"*-05", base, []string{"Thu 2026-02-05 00:00:00 UTC", "Thu 2026-03-05 00:00:00 UTC"}},
		// Sat *-1..7 15:00: the first Saturday of each month at 15:00.
		{"Sat *-1..7 15:00", base, []string{"Sat 2026-02-07 15:00:00 UTC", "Sat 2026-03-07 15:00:00 UTC", "Sat 2026-04-04 15:00:00 UTC"}},
		// 2015-10-21: one point in time, in the past.
		{"2015-10-21", base, []string{"none"}},
		{"2015-10-21", time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), []string{"Wed 2015-10-21 00:00:00 UTC", "none"}},
		// The keywords.
		{"hourly", base, []string{"Wed 2026-01-07 11:00:00 UTC", "Wed 2026-01-07 12:00:00 UTC"}},
		{"daily", base, []string{"Thu 2026-01-08 00:00:00 UTC", "Fri 2026-01-09 00:00:00 UTC"}},
		{"weekly", base, []string{"Mon 2026-01-12 00:00:00 UTC", "Mon 2026-01-19 00:00:00 UTC"}},
		{"monthly", base, []string{"Sun 2026-02-01 00:00:00 UTC", "Sun 2026-03-01 00:00:00 UTC"}},
		{"yearly", base, []string{"Fri 2027-01-01 00:00:00 UTC"}},
		{"annually", base, []string{"Fri 2027-01-01 00:00:00 UTC"}},
		{"quarterly", base, []string{"Wed 2026-04-01 00:00:00 UTC", "Wed 2026-07-01 00:00:00 UTC", "Thu 2026-10-01 00:00:00 UTC", "Fri 2027-01-01 00:00:00 UTC"}},
		{"semiannually", base, []string{"Wed 2026-07-01 00:00:00 UTC", "Fri 2027-01-01 00:00:00 UTC"}},
		{"semi-annually", base, []string{"Wed 2026-07-01 00:00:00 UTC"}},
		{"minutely", base, []string{"Wed 2026-01-07 10:18:00 UTC"}},
		// Forms the vzdump job editor offers.
		{"sat 02:00", base, []string{"Sat 2026-01-10 02:00:00 UTC", "Sat 2026-01-17 02:00:00 UTC"}},
		{"mon..fri 21:00", base, []string{"Wed 2026-01-07 21:00:00 UTC", "Thu 2026-01-08 21:00:00 UTC", "Fri 2026-01-09 21:00:00 UTC", "Mon 2026-01-12 21:00:00 UTC"}},
		{"*/15", base, []string{"Wed 2026-01-07 10:30:00 UTC", "Wed 2026-01-07 10:45:00 UTC", "Wed 2026-01-07 11:00:00 UTC"}},
		{"0/30", base, []string{"Wed 2026-01-07 10:30:00 UTC", "Wed 2026-01-07 11:00:00 UTC"}},
		{"mon,wed 3:00", base, []string{"Mon 2026-01-12 03:00:00 UTC", "Wed 2026-01-14 03:00:00 UTC"}},
		{"*-*-1 4:00", base, []string{"Sun 2026-02-01 04:00:00 UTC", "Sun 2026-03-01 04:00:00 UTC"}},
		{"21:00 UTC", base, []string{"Wed 2026-01-07 21:00:00 UTC"}},
		// A weekday range wraps after Sunday.
		{"sat..mon 01:00", base, []string{"Sat 2026-01-10 01:00:00 UTC", "Sun 2026-01-11 01:00:00 UTC", "Mon 2026-01-12 01:00:00 UTC", "Sat 2026-01-17 01:00:00 UTC"}},
		// Full names, any case; seconds.
		{"Monday 12:00:30", base, []string{"Mon 2026-01-12 12:00:30 UTC"}},
		// 29 February on a Monday: 2044.
		{"mon *-02-29", base, []string{"Mon 2044-02-29 00:00:00 UTC"}},
		// Never happens.
		{"*-02-31", base, []string{"none"}},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			ev := mustParse(t, tt.event)
			got := occurrences(ev, tt.from, time.UTC, len(tt.want))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Next from %s:\n got %q\nwant %q", tt.from.Format(time.RFC3339), got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "empty"},
		{"   ", "empty"},
		{"funday", `"funday" is not a weekday`},
		{"mon..", "expected a weekday"},
		{"24:00", "hour 24 out of range"},
		{"12:60", "minute 60 out of range"},
		{"*-13-01", "month 13 out of range"},
		{"*-00-01", "month 00 out of range"},
		{"*-01-32", "day 32 out of range"},
		{"*/0", "repetition 0 out of range"},
		{"10..5", "runs backwards"},
		{"12:05 extra", "unexpected"},
		{"mon 12:", "expected a minute"},
		{"12:05:", "expected a second"},
		{"1,", "expected a minute"},
		{"99999999999999999999", "out of range"},
		{strings.Repeat("1,", 200), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, want it to mention %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

// TestNextSpringForwardSkipsMissingTime: on 2026-03-08 New York's clocks
// jump from 02:00 EST to 03:00 EDT; 02:30 does not exist that day, and as
// in Proxmox the event does not run that day.
func TestNextSpringForwardSkipsMissingTime(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	ev := mustParse(t, "02:30")
	got := occurrences(ev, time.Date(2026, 3, 6, 12, 0, 0, 0, ny), ny, 3)
	want := []string{"Sat 2026-03-07 02:30:00 EST", "Mon 2026-03-09 02:30:00 EDT", "Tue 2026-03-10 02:30:00 EDT"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	// A time after the gap on the same day still runs, with the new offset.
	ev = mustParse(t, "03:30")
	if got := ev.Next(time.Date(2026, 3, 8, 0, 0, 0, 0, ny), ny); got.In(ny).Format("15:04 MST") != "03:30 EDT" {
		t.Errorf("03:30 on the spring-forward day = %s", got.In(ny))
	}
}

// TestNextFallBackRunsOnce: on 2026-11-01 New York's clocks go back from
// 02:00 EDT to 01:00 EST; 01:30 happens twice and the event runs once, at
// the first (EDT) occurrence. Each wall-clock time of a schedule runs once a
// day: an every-30-minutes event does not repeat 01:00 and 01:30 in EST.
func TestNextFallBackRunsOnce(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	ev := mustParse(t, "01:30")
	got := occurrences(ev, time.Date(2026, 10, 31, 12, 0, 0, 0, ny), ny, 2)
	want := []string{"Sun 2026-11-01 01:30:00 EDT", "Mon 2026-11-02 01:30:00 EST"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	// Every 30 minutes through the repeated hour.
	ev = mustParse(t, "*/30")
	got = occurrences(ev, time.Date(2026, 11, 1, 0, 45, 0, 0, ny), ny, 5)
	want = []string{"Sun 2026-11-01 01:00:00 EDT", "Sun 2026-11-01 01:30:00 EDT", "Sun 2026-11-01 02:00:00 EST", "Sun 2026-11-01 02:30:00 EST", "Sun 2026-11-01 03:00:00 EST"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("*/30 across fall-back: got %q, want %q", got, want)
	}
}

// TestNextSpringForwardEveryQuarterHour: a frequent event keeps running
// across the gap without repeating an instant.
func TestNextSpringForwardEveryQuarterHour(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	ev := mustParse(t, "*/30")
	got := occurrences(ev, time.Date(2026, 3, 8, 1, 0, 0, 0, ny), ny, 3)
	want := []string{"Sun 2026-03-08 01:30:00 EST", "Sun 2026-03-08 03:00:00 EDT", "Sun 2026-03-08 03:30:00 EDT"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestNextUsesLocation: the same event is a different instant in another zone,
// and a trailing UTC overrides the location.
func TestNextUsesLocation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	ev := mustParse(t, "sat 02:00")
	got := ev.Next(base, berlin)
	if want := time.Date(2026, 1, 10, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next in Berlin = %s, want %s", got.UTC(), want)
	}
	ev = mustParse(t, "sat 02:00 UTC")
	if got, want := ev.Next(base, berlin), time.Date(2026, 1, 10, 2, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next of a UTC event = %s, want %s", got.UTC(), want)
	}
}

// TestNextIsStrictlyAfter: an occurrence equal to `after` is not returned,
// so a scheduler that stores the last run never runs it twice.
func TestNextIsStrictlyAfter(t *testing.T) {
	ev := mustParse(t, "12:05")
	at := time.Date(2026, 1, 7, 12, 5, 0, 0, time.UTC)
	if got := ev.Next(at, time.UTC); !got.Equal(at.Add(24 * time.Hour)) {
		t.Errorf("Next(%s) = %s", at, got)
	}
	if got := ev.Next(at.Add(-time.Nanosecond), time.UTC); !got.Equal(at) {
		t.Errorf("Next(just before) = %s", got)
	}
}

func TestMatchesAndWithin(t *testing.T) {
	ev := mustParse(t, "sat 02:00")
	sat2 := time.Date(2026, 1, 10, 2, 0, 0, 0, time.UTC)
	if !ev.Matches(sat2, time.UTC) {
		t.Error("Matches(sat 02:00) = false")
	}
	if ev.Matches(sat2.Add(time.Minute), time.UTC) {
		t.Error("Matches(sat 02:01) = true")
	}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{sat2.Add(-time.Second), false},
		{sat2, true},
		{sat2.Add(59 * time.Minute), true},
		{sat2.Add(time.Hour - time.Second), true},
		{sat2.Add(time.Hour), false},
		{sat2.Add(24 * time.Hour), false},
	} {
		if got := ev.Within(tt.at, time.Hour, time.UTC); got != tt.want {
			t.Errorf("Within(%s, 1h) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if ev.Within(sat2, 0, time.UTC) {
		t.Error("Within with a zero duration = true")
	}
}

// TestNextWithFakeClock drives a scheduler-like loop with a fake clock: each
// run computes the next from the previous scheduled time, never skips one.
func TestNextWithFakeClock(t *testing.T) {
	ev := mustParse(t, "mon..fri 21:00")
	now := time.Date(2026, 1, 9, 20, 0, 0, 0, time.UTC) // Friday
	next := ev.Next(now, time.UTC)
	var runs []string
	for now.Before(time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)) {
		now = now.Add(7 * time.Minute)
		if !now.Before(next) {
			runs = append(runs, next.Format("Mon 15:04"))
			next = ev.Next(next, time.UTC)
		}
	}
	want := []string{"Fri 21:00", "Mon 21:00", "Tue 21:00"}
	if strings.Join(runs, ",") != strings.Join(want, ",") {
		t.Errorf("runs = %q, want %q", runs, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"daily", "sat 02:00", "mon..fri 21:00", "*/15", "0/30", "12:05",
		"mon,wed 3:00", "*-*-1 4:00", "Sat *-1..7 15:00", "2015-10-21", "fri 12..13:5/20", "12/2:5 UTC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := Parse(s)
		if err != nil {
			return
		}
		from := time.Date(2026, 3, 8, 1, 59, 0, 0, time.UTC)
		n := ev.Next(from, time.UTC)
		if !n.IsZero() && !n.After(from) {
			t.Fatalf("Next(%s) = %s, not after", from, n)
		}
		if !n.IsZero() && !ev.Matches(n, time.UTC) {
			t.Fatalf("Next = %s, which does not match %q", n, s)
		}
		if _, err := Parse(ev.String()); err != nil {
			t.Fatalf("String() %q does not parse: %v", ev.String(), err)
		}
	})
}

// FuzzNext: for an event that parses (never an event and an error both),
// from any instant and in any of a few time zones, Next is a whole second
// strictly after it that the event matches, its window (Within) holds it,
// the next run after it is later still, and the event written back
// (String) computes the same run. In UTC, where every wall time happens
// once, no second between the instant and Next (up to 150 of them)
// matches: Next is the first run.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"daily", "sat 02:00", "mon..fri 21:00", "*/15", "0/30", "12:05", "mon,wed 3:00",
		"*-*-1 4:00", "Sat *-1..7 15:00", "2015-10-21", "fri 12..13:5/20", "12/2:5 UTC", "minutely", "*:*:0/7",
		"2:30", "1:30", "*-2-29", "*-2-30", "2199-12-31 23:59:59"} {
		f.Add(s, int64(1772935140), uint8(0))
		f.Add(s, int64(1774748400), uint8(1))
	}
	f.Add("*:*:*", int64(-1), uint8(2))
	f.Fuzz(func(t *testing.T, s string, unix int64, zone uint8) {
		ev, err := Parse(s)
		if err != nil {
			if ev != nil {
				t.Fatalf("Parse(%q) answered an event and the error %v", s, err)
			}
			return
		}
		names := []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu"}
		loc, err := time.LoadLocation(names[int(zone)%len(names)])
		if err != nil {
			t.Skip(err)
		}
		// Instants from 1970 to about 2170, with a fraction of a second.
		from := time.Unix(int64(uint64(unix)%(200*365*86400)), int64(uint64(unix)%1e9))
		n := ev.Next(from, loc)
		again, err := Parse(ev.String())
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", ev.String(), err)
		}
		if n2 := again.Next(from, loc); !n2.Equal(n) {
			t.Fatalf("%q computes %s, written back as %q %s", s, n, ev.String(), n2)
		}
		if n.IsZero() {
			return
		}
		if !n.After(from) || n.Nanosecond() != 0 {
			t.Fatalf("Next(%s) = %s, not a whole second after it", from, n)
		}
		if !ev.Matches(n, loc) {
			t.Fatalf("Next(%s) = %s in %s, which does not match %q", from, n, loc, s)
		}
		if !ev.Within(n, time.Second, loc) {
			t.Fatalf("%s is not within a second of a run of %q", n, s)
		}
		if nn := ev.Next(n, loc); !nn.IsZero() && !nn.After(n) {
			t.Fatalf("the run after %s is %s", n, nn)
		}
		if loc == time.UTC || ev.utc {
			for c := from.Truncate(time.Second).Add(time.Second); c.Before(n) && c.Before(from.Add(150*time.Second)); c = c.Add(time.Second) {
				if ev.Matches(c, loc) {
					t.Fatalf("%q matches %s, before Next(%s) = %s", s, c, from, n)
				}
			}
		}
	})
}
