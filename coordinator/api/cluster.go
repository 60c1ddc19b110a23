package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/internal/problem"
)

func (a *API) healthz(rq *request) (int, any, error) {
	return http.StatusOK, map[string]string{"status": "ok"}, nil
}

func (a *API) readyz(rq *request) (int, any, error) {
	if !a.b.Ready() {
		return 0, nil, problem.E(problem.Unavailable, "not ready: no leader known, or this server has not applied up to the leader's commit index")
	}
	return http.StatusOK, map[string]string{"status": "ready"}, nil
}

func (a *API) getCluster(rq *request) (int, any, error) {
	in, err := a.b.Info()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, in, nil
}

func (a *API) removeMember(rq *request) (int, any, error) {
	if err := a.b.RemoveServer(rq.ctx, rq.r.PathValue("id"), rq.key); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
