package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/cluster"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/secrets"
)

// lossyLeader is a single-server backend whose FSM applies every command,
// but answers the first token write with an unknown outcome, as a leader
// does when it loses its term after the entry was committed.
type lossyLeader struct {
	f    *fsm.FSM
	mu   sync.Mutex
	lost bool
}

func (b *lossyLeader) ID() string                                         { return "s1" }
func (b *lossyLeader) IsLeader() bool                                     { return true }
func (b *lossyLeader) Ready() bool                                        { return true }
func (b *lossyLeader) Leader() (string, string, bool)                     { return "s1", "", true }
func (b *lossyLeader) ReadIndex(context.Context) error                    { return nil }
func (b *lossyLeader) FSM() *fsm.FSM                                      { return b.f }
func (b *lossyLeader) Info() (cluster.Info, error)                        { return cluster.Info{}, nil }
func (b *lossyLeader) Forward(*http.Request) (*http.Response, error)      { return nil, io.EOF }
func (b *lossyLeader) WaitApplied(context.Context, uint64) error          { return nil }
func (b *lossyLeader) CatchUp(context.Context) error                      { return nil }
func (b *lossyLeader) Sealer() *secrets.Keyring                           { return nil }
func (b *lossyLeader) RemoveServer(context.Context, string, string) error { return nil }

func (b *lossyLeader) Propose(_ context.Context, cmd fsm.Command) (fsm.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.f.ApplyCommands(b.f.AppliedIndex()+1, cmd)[0]
	if cmd.Type == fsm.CmdCreateToken && !b.lost {
		b.lost = true
		return fsm.Result{}, proposer.ErrUnknownOutcome
	}
	return r, nil
}

// TestRetriedTokenWriteAnswersItsSecret: a token or session write whose
// first attempt was committed but answered with an unknown outcome is
// retried on the same server and replayed by the FSM; the answer is the
// secret whose hash the first attempt stored, not a 409, and that secret
// works.
func TestRetriedTokenWriteAnswersItsSecret(t *testing.T) {
	for _, route := range []string{"token", "login"} {
		t.Run(route, func(t *testing.T) {
			b := &lossyLeader{f: fsm.New(1000)}
			admin := fsm.User{ID: "usr_admin", Name: "admin", Role: fsm.RoleAdmin}
			adminSecret := NewTokenSecret()
			b.f.ApplyCommands(1, fsm.Command{Type: fsm.CmdInitAdmin, RequestID: "init", InitAdmin: &fsm.InitAdminCmd{
				User: admin, Token: fsm.Token{ID: "tok_admin", UserID: admin.ID, Hash: fsm.HashToken(adminSecret), Kind: fsm.TokenAPI}}})
			a := New(Config{Backend: b, Logger: slog.New(slog.DiscardHandler), PasswordParams: &auth.Params{Time: 1, MemoryKiB: 1024, Threads: 1, KeyLen: 32}})
			defer a.Close()
			srv := httptest.NewServer(a)
			defer srv.Close()
			call := func(method, path, token, body string) (int, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var out map[string]any
				_ = json.NewDecoder(res.Body).Decode(&out)
				return res.StatusCode, out
			}
			var st int
			var out map[string]any
			if route == "token" {
				st, out = call("POST", "/api/v1/users/"+admin.ID+"/tokens", adminSecret, `{"name":"ci"}`)
			} else {
				if st, out := call("PUT", "/api/v1/users/"+admin.ID+"/password", adminSecret, `{"password":"correct horse battery"}`); st != 204 && st != 200 {
					t.Fatalf("set password: %d %v", st, out)
				}
				st, out = call("POST", "/api/v1/login", "", `{"name":"admin","password":"correct horse battery"}`)
			}
			if st != 200 && st != 201 {
				t.Fatalf("%s after an unknown outcome: %d %v; want the secret the first attempt stored", route, st, out)
			}
			secret, _ := out["token"].(string)
			if st, me := call("GET", "/api/v1/me", secret, ""); st != 200 {
				t.Fatalf("the answered secret does not work: %d %v", st, me)
			}
		})
	}
}
