package fsm

import (
	"time"

	"github.com/proximity-ve/proximity/internal/calendar"
)

// CheckWindow checks a maintenance window's calendar event (Proxmox's
// syntax, internal/calendar).
func CheckWindow(spec string) error {
	_, err := calendar.Parse(spec)
	return err
}

// WindowOpen reports whether t is inside a maintenance window: one opens
// at each time of the calendar event spec, read as a wall-clock time in
// t's location (the coordinator's local time; UTC when the event ends in
// "UTC"), and lasts minutes.
func WindowOpen(spec string, minutes int, t time.Time) (bool, error) {
	ev, err := calendar.Parse(spec)
	if err != nil {
		return false, err
	}
	return ev.Within(t, time.Duration(minutes)*time.Minute, t.Location()), nil
}
