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

// putSetting decodes, validates and stores one kind of settings.
func putSetting[T interface{ Validate() error }](a *API, rq *request, command func(*T) fsm.Command) (int, any, error) {
	var v T
	if err := rq.decode(&v); err != nil {
		return 0, nil, err
	}
	if err := v.Validate(); err != nil {
		return 0, nil, err
	}
	cmd := command(&v)
	cmd.RequestID = rq.key
	if _, err := a.propose(rq, cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

func (a *API) putPools(rq *request) (int, any, error) {
	return putSetting(a, rq, func(p *fsm.PoolSettings) fsm.Command { return fsm.Command{Type: fsm.CmdSetPools, SetPools: p} })
}

func (a *API) getResources(rq *request) (int, any, error) {
	var r fsm.ResourceSettings
	a.b.FSM().Read(func(s *fsm.State) { r = s.ResourceDefaults() })
	return http.StatusOK, r, nil
}

func (a *API) putResources(rq *request) (int, any, error) {
	return putSetting(a, rq, func(r *fsm.ResourceSettings) fsm.Command {
		return fsm.Command{Type: fsm.CmdSetResources, SetResources: r}
	})
}
