package fsm

import (
	"slices"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// TOTPKeyPurpose binds a sealed TOTP secret to its use.
const TOTPKeyPurpose = "totp-secret"

// TOTPState is a user's second factor: its secret, sealed under the
// cluster key; whether it is on (it is once a code has been verified);
// the hashes of the unused recovery codes; and the last time step a code
// was accepted for, so that each code works once.
type TOTPState struct {
	Secret   *secrets.Sealed `json:"secret"`
	Enabled  bool            `json:"enabled"`
	Recovery []string        `json:"recovery,omitempty"`
	LastStep uint64          `json:"last_step,omitempty"`
}

// SetTOTPCmd changes a user's second factor. Exactly one of: Enrol (a new
// secret, not yet on), Enable (turn the enrolled secret on, with recovery
// code hashes and the step of the code that proved it), Reset (remove
// it), UseStep (a login's code: refused unless later than the last step
// used) or UseRecovery (a login's recovery code hash: refused unless
// unused, then spent).
type SetTOTPCmd struct {
	UserID      string          `json:"user_id"`
	Enrol       *secrets.Sealed `json:"enrol,omitempty"`
	Enable      bool            `json:"enable,omitempty"`
	Recovery    []string        `json:"recovery,omitempty"`
	Reset       bool            `json:"reset,omitempty"`
	UseStep     uint64          `json:"use_step,omitempty"`
	UseRecovery string          `json:"use_recovery,omitempty"`
}

func (s *State) setTOTP(c SetTOTPCmd) error {
	u, ok := s.Users[c.UserID]
	if !ok {
		return problem.E(problem.NotFound, "user %s not found", c.UserID)
	}
	next := *u
	var t TOTPState
	if u.TOTP != nil {
		t = *u.TOTP
		t.Recovery = slices.Clone(u.TOTP.Recovery)
	}
	switch {
	case c.Enrol != nil:
		if t.Enabled {
			return problem.E(problem.Conflict, "two-factor authentication is on already; reset it first")
		}
		t = TOTPState{Secret: c.Enrol}
	case c.Enable:
		if t.Secret == nil || t.Enabled {
			return problem.E(problem.Conflict, "no two-factor enrolment waits to be turned on")
		}
		if c.UseStep == 0 || len(c.Recovery) == 0 {
			return problem.E(problem.Invalid, "enable: a verified step and recovery codes required")
		}
		t.Enabled, t.Recovery, t.LastStep = true, slices.Clone(c.Recovery), c.UseStep
	case c.Reset:
		next.TOTP = nil
		s.Users[c.UserID] = &next
		return nil
	case c.UseStep != 0:
		if !t.Enabled {
			return problem.E(problem.Conflict, "two-factor authentication is off")
		}
		if c.UseStep <= t.LastStep {
			return problem.E(problem.Unauthenticated, "this code was used already")
		}
		t.LastStep = c.UseStep
	case c.UseRecovery != "":
		i := slices.Index(t.Recovery, c.UseRecovery)
		if !t.Enabled || i < 0 {
			return problem.E(problem.Unauthenticated, "the recovery code is not valid")
		}
		t.Recovery = slices.Delete(t.Recovery, i, i+1)
	default:
		return problem.E(problem.Invalid, "totp: nothing to change")
	}
	next.TOTP = &t
	s.Users[c.UserID] = &next
	return nil
}
