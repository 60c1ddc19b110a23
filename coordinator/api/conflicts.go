package api

import (
	"fmt"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
)

// forCaller completes a refusal of the FSM for whoever asked: the FSM says
// only that a hostname is taken (users deploy too, and another owner's
// reservation is none of theirs); an admin is also told which reservation
// holds it, and its owner.
func (a *API) forCaller(rq *request, err error) error {
	if rq.user.Role != fsm.RoleAdmin || problem.TypeOf(err) != fsm.ProblemHostnameTaken {
		return err
	}
	pe, ok := err.(*problem.Error)
	if !ok {
		return err
	}
	var host string
	if _, e := fmt.Sscanf(pe.Detail, "hostname %q is taken", &host); e != nil {
		return err
	}
	var r fsm.Reservation
	a.b.FSM().Read(func(s *fsm.State) { r, ok = s.ReservationByHostname(host) })
	if !ok {
		return err
	}
	return &problem.Error{Kind: pe.Kind, Type: pe.Type, Detail: fmt.Sprintf("%s (reservation %s, owner %s)", pe.Detail, r.ID, r.Owner)}
}
