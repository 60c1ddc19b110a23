// Package calendar parses Proxmox calendar events — the systemd-like schedule
// syntax of vzdump jobs, Proxmox Backup Server and the datacenter's
// replication — and computes their next occurrence.
//
// The grammar follows Proxmox's own parser (proxmox-time's CalendarEvent):
//
//	event   = keyword | [weekdays] [date] [time] ["UTC"]   (at least one part)
//	keyword = minutely | hourly | daily | weekly | monthly | yearly | annually
//	        | quarterly | semiannually | semi-annually
//	weekdays = wdrange {"," wdrange}      wdrange = wday [".." wday]
//	wday     = mon|tue|wed|thu|fri|sat|sun or the full English name, any case
//	date     = [years "-"] months "-" days
//	time     = [hours ":"] minutes [":" seconds]
//	list     = "*" | "*/" rep | value {"," value}
//	value    = n | n ".." m | n "/" rep | n ".." m "/" rep
//
// A weekday range may wrap (sat..mon is sat, sun, mon). A time with a single
// field is the minute of every hour (`*/15`, `0/30` and `5` are minute
// specifications); a missing time is 00:00:00; missing seconds are :00; a
// missing date or weekday list means every day. `n/rep` is n, n+rep, … up to
// the field's maximum (or m for `n..m/rep`). Values are bounded per field:
// hours 0-23, minutes and seconds 0-59, months 1-12, days 1-31, years 0-2199.
// One deliberate difference: Proxmox reads "24:00" (an hour out of range)
// as minute 24, second 0; here it is refused, naming the hour.
//
// Times are wall-clock times in the location given to Next (or UTC when the
// event ends in "UTC"). Across daylight-saving changes:
//   - a wall time that does not exist on a spring-forward day is skipped that
//     day: a 02:30 event does not run on the day New York's clocks jump from
//     02:00 to 03:00. Proxmox does the same: its search walks the broken-down
//     local time, mktime normalises 02:30 to 03:30, which no longer matches
//     the hour, and the search moves to the next day.
//   - a wall time that happens twice on a fall-back day runs once, at its
//     first occurrence: a 01:30 event runs at 01:30 EDT, not again at 01:30
//     EST. Each wall-clock time of a schedule is one run, so a scheduled
//     backup never runs twice in one night (the repeated hour's second
//     pass, 01:00-01:59 EST, has no runs of its own).
package calendar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is a parsed calendar event. The zero Event is not valid; use Parse.
type Event struct {
	text string
	utc  bool
	// days is a bit set of weekdays (bit time.Weekday); 0 means every day.
	days uint8
	// Each list is the set of allowed values; nil means every value.
	years, months, mdays, hours, minutes, seconds []bool
}

// maxima of each field, exclusive (Proxmox's parse_time_comp bounds).
const (
	maxYear   = 2200
	maxMonth  = 13
	maxDay    = 32
	maxHour   = 24
	maxMinute = 60
)

var keywords = map[string]string{
	"minutely":      "*-*-* *:*:00",
	"hourly":        "*-*-* *:00:00",
	"daily":         "*-*-* 00:00:00",
	"weekly":        "mon *-*-* 00:00:00",
	"monthly":       "*-*-01 00:00:00",
	"yearly":        "*-01-01 00:00:00",
	"annually":      "*-01-01 00:00:00",
	"quarterly":     "*-01,04,07,10-01 00:00:00",
	"semiannually":  "*-01,07-01 00:00:00",
	"semi-annually": "*-01,07-01 00:00:00",
}

var weekdayNames = map[string]time.Weekday{
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
	"sun": time.Sunday, "sunday": time.Sunday,
}

// ErrEmpty is returned by Parse for an empty event.
var ErrEmpty = errors.New("calendar event is empty")

// maxLen bounds the text Parse accepts; real events are a few dozen bytes.
const maxLen = 256

// Parse parses a calendar event. Errors say what is wrong and where.
func Parse(s string) (*Event, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return nil, ErrEmpty
	}
	if len(text) > maxLen {
		return nil, fmt.Errorf("calendar event is longer than %d characters", maxLen)
	}
	ev := &Event{text: text}
	rest := text
	if r, ok := strings.CutSuffix(rest, "UTC"); ok {
		ev.utc = true
		rest = strings.TrimRight(r, " ")
	}
	if exp, ok := keywords[rest]; ok {
		rest = exp
	}
	p := &parser{s: rest}
	if err := p.event(ev); err != nil {
		return nil, fmt.Errorf("calendar event %q: %w", text, err)
	}
	return ev, nil
}

// String returns the event as it was written.
func (e *Event) String() string { return e.text }

type parser struct {
	s   string
	pos int
}

func (p *parser) rest() string { return p.s[p.pos:] }

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("at position %d: %s", p.pos+1, fmt.Sprintf(format, a...))
}

func (p *parser) skipSpaces() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *parser) event(ev *Event) error {
	parts := 0
	if p.pos < len(p.s) && isAlpha(p.s[p.pos]) {
		if err := p.weekdays(ev); err != nil {
			return err
		}
		parts++
		p.skipSpaces()
	}
	if ok, err := p.date(ev); err != nil {
		return err
	} else if ok {
		parts++
		p.skipSpaces()
	}
	if p.pos < len(p.s) {
		if err := p.time(ev); err != nil {
			return err
		}
		parts++
	} else {
		ev.hours, ev.minutes, ev.seconds = single(maxHour, 0), single(maxMinute, 0), single(maxMinute, 0)
	}
	if p.pos < len(p.s) {
		return p.errorf("unexpected %q", p.rest())
	}
	if parts == 0 {
		return p.errorf("expected a weekday, a date or a time")
	}
	return nil
}

func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.s) && isAlpha(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *parser) weekday() (time.Weekday, error) {
	at := p.pos
	w := p.word()
	d, ok := weekdayNames[strings.ToLower(w)]
	if !ok {
		p.pos = at
		if w == "" {
			return 0, p.errorf("expected a weekday")
		}
		return 0, p.errorf("%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", w)
	}
	return d, nil
}

// monday-based index: mon=0 … sun=6, the order of Proxmox's ranges.
func mondayIndex(d time.Weekday) int { return (int(d) + 6) % 7 }

func (p *parser) weekdays(ev *Event) error {
	for {
		start, err := p.weekday()
		if err != nil {
			return err
		}
		end := start
		if strings.HasPrefix(p.rest(), "..") {
			p.pos += 2
			if end, err = p.weekday(); err != nil {
				return err
			}
		}
		// A range runs forward from start to end, wrapping after Sunday.
		for i := mondayIndex(start); ; i = (i + 1) % 7 {
			ev.days |= 1 << uint((i+1)%7)
			if i == mondayIndex(end) {
				break
			}
		}
		if !strings.HasPrefix(p.rest(), ",") {
			return nil
		}
		p.pos++
	}
}

// date parses [years-]months-days; it reports false (and consumes nothing)
// when the text there is not a date.
func (p *parser) date(ev *Event) (bool, error) {
	at := p.pos
	a, errA := p.list(maxYear, 0, "year")
	if errA != nil || !strings.HasPrefix(p.rest(), "-") {
		p.pos = at
		return false, nil
	}
	p.pos++
	b, err := p.list(maxMonth, 1, "month")
	if err != nil {
		return false, err
	}
	if !strings.HasPrefix(p.rest(), "-") {
		// months-days: re-read the first list as months.
		p.pos = at
		if ev.months, err = p.list(maxMonth, 1, "month"); err != nil {
			return false, err
		}
		p.pos++ // "-"
		ev.mdays, err = p.list(maxDay, 1, "day")
		return err == nil, err
	}
	p.pos++
	c, err := p.list(maxDay, 1, "day")
	if err != nil {
		return false, err
	}
	ev.years, ev.months, ev.mdays = a, b, c
	return true, nil
}

func (p *parser) time(ev *Event) error {
	at := p.pos
	first, hourErr := p.list(maxHour, 0, "hour")
	if hourErr == nil && strings.HasPrefix(p.rest(), ":") {
		p.pos++
		ev.hours = first
	} else {
		p.pos = at
	}
	var err error
	if ev.minutes, err = p.list(maxMinute, 0, "minute"); err != nil {
		return err
	}
	if strings.HasPrefix(p.rest(), ":") {
		if hourErr != nil {
			// "24:00" is a bad hour, not minute 24 and second 0.
			return hourErr
		}
		p.pos++
		if ev.seconds, err = p.list(maxMinute, 0, "second"); err != nil {
			return err
		}
	} else {
		ev.seconds = single(maxMinute, 0)
	}
	return nil
}

func single(max, v int) []bool {
	s := make([]bool, max)
	s[v] = true
	return s
}

func (p *parser) number(max, min int, field string) (int, error) {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if start == p.pos {
		if p.pos < len(p.s) {
			return 0, p.errorf("expected a %s, got %q", field, p.s[p.pos:p.pos+1])
		}
		return 0, p.errorf("expected a %s", field)
	}
	digits := p.s[start:p.pos]
	n, err := strconv.Atoi(digits)
	if err != nil || n >= max || n < min {
		p.pos = start
		return 0, p.errorf("%s %s out of range %d-%d", field, digits, min, max-1)
	}
	return n, nil
}

// list parses a comma-separated list of values of one field; nil means "*".
func (p *parser) list(max, min int, field string) ([]bool, error) {
	if strings.HasPrefix(p.rest(), "*") {
		p.pos++
		if !strings.HasPrefix(p.rest(), "/") {
			return nil, nil
		}
		p.pos++
		rep, err := p.number(max, 1, "repetition")
		if err != nil {
			return nil, err
		}
		set := make([]bool, max)
		for v := min; v < max; v += rep {
			set[v] = true
		}
		return set, nil
	}
	set := make([]bool, max)
	for {
		start, err := p.number(max, min, field)
		if err != nil {
			return nil, err
		}
		end, rep, isRange := start, 0, false
		if strings.HasPrefix(p.rest(), "..") {
			p.pos += 2
			if end, err = p.number(max, min, field); err != nil {
				return nil, err
			}
			if start > end {
				return nil, p.errorf("%s range %d..%d runs backwards", field, start, end)
			}
			isRange = true
		}
		if strings.HasPrefix(p.rest(), "/") {
			p.pos++
			if rep, err = p.number(max, 0, "repetition"); err != nil {
				return nil, err
			}
			if !isRange && rep > 0 {
				end = max - 1 // n/rep runs to the field's maximum
			}
		}
		if rep == 0 {
			rep = 1 // n/0 is just n, as in Proxmox
		}
		for v := start; v <= end; v += rep {
			set[v] = true
		}
		if !strings.HasPrefix(p.rest(), ",") {
			return set, nil
		}
		p.pos++
	}
}

func has(set []bool, v int) bool { return set == nil || (v >= 0 && v < len(set) && set[v]) }

func values(set []bool, max int) []int {
	var out []int
	for v := 0; v < max; v++ {
		if has(set, v) {
			out = append(out, v)
		}
	}
	return out
}

func (e *Event) location(loc *time.Location) *time.Location {
	if e.utc || loc == nil {
		return time.UTC
	}
	return loc
}

func (e *Event) dayMatches(y int, m time.Month, d int, wd time.Weekday) bool {
	return has(e.years, y) && has(e.months, int(m)) && has(e.mdays, d) &&
		(e.days == 0 || e.days&(1<<uint(wd)) != 0)
}

// Matches reports whether t, read as a wall-clock time in loc, is an
// occurrence of the event (to the second).
func (e *Event) Matches(t time.Time, loc *time.Location) bool {
	t = t.In(e.location(loc))
	return e.dayMatches(t.Year(), t.Month(), t.Day(), t.Weekday()) &&
		has(e.hours, t.Hour()) && has(e.minutes, t.Minute()) && has(e.seconds, t.Second())
}

// Within reports whether t lies in a window that opens at an occurrence of
// the event and lasts d: some occurrence o with o <= t < o+d.
func (e *Event) Within(t time.Time, d time.Duration, loc *time.Location) bool {
	if d <= 0 {
		return false
	}
	o := e.Next(t.Add(-d), loc)
	return !o.IsZero() && !o.After(t)
}

// searchYears bounds Next's search: every combination of weekday and date
// (even a 29 February on a Monday) recurs within 28 years.
const searchYears = 29

// Next returns the first occurrence of the event strictly after `after`
// (occurrences are whole seconds), computed in the wall-clock time of loc
// (nil is UTC). It returns the zero Time when there is none within 29
// years (every weekday and date combination recurs within 28) — an event
// whose dates all lie in the past or that can never happen (31 February).
func (e *Event) Next(after time.Time, loc *time.Location) time.Time {
	loc = e.location(loc)
	start := after.In(loc).Truncate(time.Second).Add(time.Second)
	sy, sm, sd := start.Date()
	sh, smin, ss := start.Clock()
	hours, minutes, seconds := values(e.hours, maxHour), values(e.minutes, maxMinute), values(e.seconds, maxMinute)
	day := time.Date(sy, sm, sd, 12, 0, 0, 0, time.UTC) // calendar arithmetic only
	limit := day.AddDate(searchYears, 0, 0)
	if e.years != nil {
		last := -1
		for y := range e.years {
			if e.years[y] {
				last = y
			}
		}
		if last < sy {
			return time.Time{}
		}
	}
	for ; day.Before(limit); day = day.AddDate(0, 0, 1) {
		y, m, d := day.Date()
		if e.years != nil && y >= maxYear {
			return time.Time{}
		}
		if !e.dayMatches(y, m, d, day.Weekday()) {
			if !has(e.months, int(m)) || !has(e.years, y) {
				day = time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC) // to the month's last day
			}
			continue
		}
		first := y == sy && m == sm && d == sd
		for _, h := range hours {
			if first && h < sh {
				continue
			}
			for _, mi := range minutes {
				if first && h == sh && mi < smin {
					continue
				}
				for _, s := range seconds {
					if first && h == sh && mi == smin && s < ss {
						continue
					}
					if t, ok := resolve(y, m, d, h, mi, s, loc); ok && t.After(after) {
						return t
					}
				}
			}
		}
	}
	return time.Time{}
}

// resolve turns a wall-clock time into an instant: its first occurrence
// when the wall time happens twice (fall-back), and false when it does not
// happen at all (inside a spring-forward gap).
func resolve(y int, m time.Month, d, h, mi, s int, loc *time.Location) (time.Time, bool) {
	same := func(t time.Time) bool {
		ty, tm, td := t.Date()
		th, tmi, ts := t.Clock()
		return ty == y && tm == m && td == d && th == h && tmi == mi && ts == s
	}
	var best time.Time
	t := time.Date(y, m, d, h, mi, s, 0, loc)
	for _, shift := range []time.Duration{-2 * time.Hour, -time.Hour, -30 * time.Minute, 0, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		c := t.Add(shift)
		if same(c) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	return best, !best.IsZero()
}
