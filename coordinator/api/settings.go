package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

type networkJSON struct {
	Subnet  string   `json:"subnet"`
	Gateway string   `json:"gateway"`
	DNS     []string `json:"dns"`
	Bridge  string   `json:"bridge"`
}

func (a *API) getNetwork(rq *request) (int, any, error) {
	var n fsm.NetworkSettings
	a.b.FSM().Read(func(s *fsm.State) { n = s.Network })
	if n.DNS == nil {
		n.DNS = []string{}
	}
	return http.StatusOK, networkJSON(n), nil
}

func (a *API) putNetwork(rq *request) (int, any, error) {
	var in networkJSON
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	n := fsm.NetworkSettings(in)
	if err := n.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetNetwork, RequestID: rq.key, SetNetwork: &n}); err != nil {
		return 0, nil, err
	}
	if n.DNS == nil {
		n.DNS = []string{}
	}
	return http.StatusOK, networkJSON(n), nil
}

func (a *API) getPools(rq *request) (int, any, error) {
	var p fsm.PoolSettings
	a.b.FSM().Read(func(s *fsm.State) { p = s.Pools })
	return http.StatusOK, p, nil
}

func (a *API) putPools(rq *request) (int, any, error) {
	var p fsm.PoolSettings
	if err := rq.decode(&p); err != nil {
		return 0, nil, err
	}
	if err := p.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetPools, RequestID: rq.key, SetPools: &p}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

func (a *API) getResources(rq *request) (int, any, error) {
	var r fsm.ResourceSettings
	a.b.FSM().Read(func(s *fsm.State) { r = s.ResourceDefaults() })
	return http.StatusOK, r, nil
}

func (a *API) putResources(rq *request) (int, any, error) {
	var r fsm.ResourceSettings
	if err := rq.decode(&r); err != nil {
		return 0, nil, err
	}
	if err := r.Validate(); err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetResources, RequestID: rq.key, SetResources: &r}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r, nil
}
