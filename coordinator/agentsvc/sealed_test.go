package agentsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/secrets"
	"github.com/proximity-ve/proximity/internal/taskspec"
	"github.com/proximity-ve/proximity/proto"
)

// TestSealedSettingsAreOpenedOnTheWayToTheAgent: a write_env task holds
// its secret values sealed in the log; the agent receives them open, over
// its stream. A value another key sealed stays sealed (the agent refuses
// the task), and other tasks' specs go as they are.
func TestSealedSettingsAreOpenedOnTheWayToTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		a := h.join("pve1", h.token(""))
		kr := h.s.cfg.Sealer()
		good, err := kr.Seal(fsm.AppSettingPurpose("app1", "PASSWORD"), []byte("hunter2"))
		if err != nil {
			t.Fatal(err)
		}
		otherKey, _ := secrets.NewKey([]byte("0123456789abcdef0123456789abcdef"))
		other, _ := secrets.NewKeyring(otherKey)
		foreign, err := other.Seal(fsm.AppSettingPurpose("app1", "TOKEN"), []byte("nope"))
		if err != nil {
			t.Fatal(err)
		}
		spec := taskspec.EnvSpec{Path: "/opt/proximity/app/.env", App: "app1", Values: map[string]string{"PLAIN": "v"},
			Sealed: map[string]*secrets.Sealed{"PASSWORD": good, "TOKEN": foreign}}
		if _, err := h.s.Submit(context.Background(), fsm.Task{ID: "env", Node: "pve1", Kind: taskspec.WriteEnv}, spec); err != nil {
			t.Fatal(err)
		}
		h.submit("exec", "pve1")
		var logged fsm.Task
		h.b.FSM().Read(func(s *fsm.State) { logged, _ = s.Task("env") })
		if bytes.Contains(logged.Spec, []byte("hunter2")) {
			t.Fatal("the log holds the secret in the clear")
		}
		ws, _ := h.work(a, 0)
		evs := drain(ws)
		var got taskspec.EnvSpec
		if err := json.Unmarshal(evs[0].GetTask().SpecJson, &got); err != nil {
			t.Fatal(err)
		}
		if got.Values["PASSWORD"] != "hunter2" || got.Values["PLAIN"] != "v" || got.Sealed["PASSWORD"] != nil {
			t.Fatalf("delivered values %v sealed %v", got.Values, got.Sealed)
		}
		if _, ok := got.Values["TOKEN"]; ok || got.Sealed["TOKEN"] == nil {
			t.Fatalf("a value this cluster cannot open: values %v sealed %v", got.Values, got.Sealed)
		}
		if string(evs[1].GetTask().SpecJson) != `{"cmd":"exec"}` {
			t.Fatalf("another task's spec: %s", evs[1].GetTask().SpecJson)
		}
	})
}

// TestProposalFailuresMapToGRPCCodes: each kind of failure reaches the
// agent as the code it acts on; a leader change and an unknown outcome
// are retryable, and anything else is an internal error whose text is not
// passed on.
func TestProposalFailuresMapToGRPCCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{proposer.ErrUnknownOutcome, codes.Unavailable},
		{fmt.Errorf("propose: %w", context.DeadlineExceeded), codes.Unavailable},
		{problem.E(problem.Invalid, "bad"), codes.InvalidArgument},
		{problem.E(problem.NotFound, "gone"), codes.NotFound},
		{problem.E(problem.Conflict, "taken"), codes.FailedPrecondition},
		{problem.E(problem.Exhausted, "full"), codes.FailedPrecondition},
		{problem.E(problem.Unauthenticated, "who"), codes.Unauthenticated},
		{problem.E(problem.Permission, "no"), codes.PermissionDenied},
		{errors.New("disk on fire"), codes.Internal},
	} {
		got := grpcErr(tc.err)
		wantCode(t, tc.err.Error(), got, tc.want)
		if tc.want == codes.Internal && got.Error() != "rpc error: code = Internal desc = internal error" {
			t.Fatalf("an internal error's text was passed on: %v", got)
		}
	}
	if !proto.IsNotLeader(grpcErr(fmt.Errorf("apply: %w", proposer.ErrNotLeader))) {
		t.Fatal("not leader is not the not-leader status")
	}
}
