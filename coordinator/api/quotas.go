package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// getQuotas answers the default quota: the limits of every user that has
// none of its own (0 is unlimited).
func (a *API) getQuotas(rq *request) (int, any, error) {
	var q fsm.Quota
	a.b.FSM().Read(func(s *fsm.State) { q = s.DefaultQuota() })
	return http.StatusOK, q, nil
}

// putQuotas replaces the default quota whole; a field left out is 0
// (unlimited). The FSM checks it against every later deploy and clone.
func (a *API) putQuotas(rq *request) (int, any, error) {
	return putSetting(a, rq, func(q *fsm.Quota) fsm.Command { return fsm.Command{Type: fsm.CmdSetQuotas, SetQuotas: q} })
}
