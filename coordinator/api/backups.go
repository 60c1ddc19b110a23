package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/validate"
)

type backupJSON struct {
	ID        string `json:"id"`
	AppID     string `json:"app_id"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Volid     string `json:"volid,omitempty"`
	Error     string `json:"error,omitempty"`
	CreatedAt string `json:"created_at"`
}

func backupOut(b fsm.Backup) backupJSON {
	return backupJSON{ID: b.ID, AppID: b.AppID, Status: b.Status, Reason: b.Reason, Volid: b.Volid, Error: b.Error,
		CreatedAt: b.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00")}
}

func (a *API) listBackups(rq *request) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	q := rq.r.URL.Query()
	pg, per, err := validate.Pagination(q.Get("page"), q.Get("per_page"))
	if err != nil {
		return 0, nil, err
	}
	out := page[backupJSON]{Items: []backupJSON{}, Page: pg, PerPage: per}
	a.b.FSM().Read(func(s *fsm.State) {
		all := s.AppBackups(app.ID)
		out.Total = len(all)
		for _, b := range validate.PageOf(all, pg, per) {
			out.Items = append(out.Items, backupOut(b))
		}
	})
	return http.StatusOK, out, nil
}

// backupOp starts a backup operation: a new backup (backup, update) or one
// that uses backup {bid} (restore, delete).
func (a *API) backupOp(rq *request, op string) (int, any, error) {
	app, err := a.ownApp(rq)
	if err != nil {
		return 0, nil, err
	}
	bid := rq.r.PathValue("bid")
	if bid == "" {
		bid = NewID("bak_")
	}
	r, err := a.propose(rq, fsm.Command{Type: fsm.CmdAppAction, RequestID: rq.key, AppAction: &fsm.AppActionCmd{
		ID: app.ID, Op: op, Owner: owner(rq), BackupID: bid, At: a.now()}})
	if err != nil {
		return 0, nil, err
	}
	if op == fsm.OpBackup {
		var b fsm.Backup
		a.b.FSM().Read(func(s *fsm.State) {
			for _, x := range s.AppBackups(app.ID) {
				if x.ID == bid {
					b = x
				}
			}
		})
		return http.StatusAccepted, backupOut(b), nil
	}
	return http.StatusAccepted, a.appView(*r.App), nil
}

func (a *API) createBackup(rq *request) (int, any, error)  { return a.backupOp(rq, fsm.OpBackup) }
func (a *API) restoreBackup(rq *request) (int, any, error) { return a.restoreOrMove(rq) }
func (a *API) deleteBackup(rq *request) (int, any, error)  { return a.backupOp(rq, fsm.OpDeleteBackup) }
