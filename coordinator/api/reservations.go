package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// reservationJSON is a reservation on the wire.
type reservationJSON struct {
	ID          string    `json:"id"`
	VMID        int       `json:"vmid"`
	Hostname    string    `json:"hostname"`
	Node        string    `json:"node"`
	PublicPorts []int     `json:"public_ports"`
	IP          string    `json:"ip,omitempty"`
	Owner       string    `json:"owner"`
	Index       uint64    `json:"index"`
	CreatedAt   time.Time `json:"created_at"`
	// Standby: a moved app's second reservation (fsm/move.go).
	Standby bool `json:"standby,omitempty"`
}

func toJSON(r fsm.Reservation) reservationJSON {
	ports := r.PublicPorts
	if ports == nil {
		ports = []int{}
	}
	return reservationJSON{ID: r.ID, VMID: r.VMID, Hostname: r.Hostname, Node: r.Node,
		PublicPorts: ports, IP: r.IP, Owner: r.Owner, Index: r.Index, CreatedAt: r.CreatedAt, Standby: r.Standby}
}

type page[T any] struct {
	Items   []T `json:"items"`
	Total   int `json:"total"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
}

type reserveRequest struct {
	RequestID   string `json:"request_id"`
	Hostname    string `json:"hostname"`
	Node        string `json:"node"`
	PublicPorts *int   `json:"public_ports"`
	IP          bool   `json:"ip"`
	Owner       string `json:"owner"`
}

func (a *API) createReservation(rq *request) (int, any, error) {
	var in reserveRequest
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.RequestID != "" {
		if err := validate.RequestID("request_id", in.RequestID); err != nil {
			return 0, nil, err
		}
	}
	// Validate here for a clear error before anything is proposed; the FSM
	// checks again, since it is the authority.
	if _, err := validate.Hostname("hostname", in.Hostname); err != nil {
		return 0, nil, err
	}
	if err := validate.NodeName("node", in.Node); err != nil {
		return 0, nil, err
	}
	ports := 0
	if in.PublicPorts != nil {
		ports = *in.PublicPorts
		if ports < 0 || ports > fsm.MaxPublicPorts {
			return 0, nil, problem.E(problem.Invalid, "public_ports: %d outside 0-%d", ports, fsm.MaxPublicPorts)
		}
	}
	owner := in.Owner
	if owner == "" {
		owner = "user:" + rq.user.Name
	}
	if err := validate.Label("owner", owner); err != nil {
		return 0, nil, err
	}
	if strings.HasPrefix(owner, fsm.AppOwnerPrefix) {
		// Only an app's own deploy, clone or adoption makes an app's
		// reservation; one made here could never be told apart.
		return 0, nil, problem.E(problem.Invalid, "owner: %q: the prefix %q is kept for apps' own reservations", owner, fsm.AppOwnerPrefix)
	}
	cmd := fsm.Command{Type: fsm.CmdReserve, RequestID: rq.commandID(in.RequestID), Reserve: &fsm.ReserveCmd{
		ID: NewID("rsv_"), Hostname: in.Hostname, Node: in.Node, PublicPorts: ports, IP: in.IP,
		Owner: owner, CreatedAt: a.now(),
	}}
	res, err := a.propose(rq, cmd)
	if err != nil {
		return 0, nil, err
	}
	// A repeat answers as the first did: a follower that retried the
	// forward of this very request gets the replay too.
	return http.StatusCreated, toJSON(*res.Reservation), nil
}

// propose submits a command and turns a failed result into its error.
func (a *API) propose(rq *request, cmd fsm.Command) (fsm.Result, error) {
	res, err := a.b.Propose(rq.ctx, cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	if err := res.Err(); err != nil {
		return fsm.Result{}, a.forCaller(rq, err)
	}
	return res, nil
}

func (a *API) listReservations(rq *request) (int, any, error) {
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	out := page[reservationJSON]{Items: []reservationJSON{}, Page: pg, PerPage: per}
	if h := q.Get("hostname"); h != "" {
		host, err := validate.Hostname("hostname", h)
		if err != nil {
			return 0, nil, err
		}
		a.b.FSM().Read(func(s *fsm.State) {
			if r, ok := s.ReservationByHostname(host); ok {
				out.Total = 1
				if pg == 1 {
					out.Items = append(out.Items, toJSON(r))
				}
			}
		})
		return http.StatusOK, out, nil
	}
	a.b.FSM().Read(func(s *fsm.State) {
		items, total := s.ListReservations(pg, per)
		out.Total = total
		for _, r := range items {
			out.Items = append(out.Items, toJSON(r))
		}
	})
	return http.StatusOK, out, nil
}

func (a *API) getReservation(rq *request) (int, any, error) {
	id := rq.r.PathValue("id")
	var r fsm.Reservation
	var ok bool
	a.b.FSM().Read(func(s *fsm.State) { r, ok = s.Reservation(id) })
	if !ok {
		return 0, nil, problem.E(problem.NotFound, "reservation %s not found", id)
	}
	return http.StatusOK, toJSON(r), nil
}

func (a *API) deleteReservation(rq *request) (int, any, error) {
	id := rq.r.PathValue("id")
	// The FSM refuses it too (it is the authority); asking first gives the
	// same answer without a proposal.
	var app fsm.App
	var held bool
	a.b.FSM().Read(func(s *fsm.State) { app, held = s.AppHolding(id) })
	if held {
		return 0, nil, problem.E(problem.Conflict, "reservation %s belongs to app %s (%s); delete the app to free it", id, app.Hostname, app.ID)
	}
	cmd := fsm.Command{Type: fsm.CmdRelease, RequestID: rq.key, Release: &fsm.ReleaseCmd{ID: id}}
	if _, err := a.propose(rq, cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
