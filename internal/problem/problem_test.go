package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuditFindings21And27InternalErrorsHideTheirText(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, fmt.Errorf("open /var/lib/secret.db: %w", errors.New("permission denied")), "req_1")
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || b.Status != 500 || strings.Contains(b.Detail, "secret") || !strings.Contains(b.Detail, "req_1") {
		t.Fatalf("internal error body: %d %+v", rec.Code, b)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("content type %q", ct)
	}
}

func TestKindsMapToStatuses(t *testing.T) {
	want := map[Kind]int{Invalid: 400, Unauthenticated: 401, Permission: 403, NotFound: 404, Method: 405,
		Conflict: 409, Exhausted: 409, TooLarge: 413, Internal: 500, Unavailable: 503}
	for k, st := range want {
		rec := httptest.NewRecorder()
		Write(rec, Wrap(k, errors.New("cause"), "detail for "+k.String()), "req_2")
		if rec.Code != st {
			t.Errorf("%v: status %d, want %d", k, rec.Code, st)
		}
		if k != Internal && !strings.Contains(rec.Body.String(), "detail for") {
			t.Errorf("%v: detail missing: %s", k, rec.Body)
		}
		if k == Unavailable && rec.Header().Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if KindOf(fmt.Errorf("wrapped: %w", E(NotFound, "x"))) != NotFound {
		t.Error("KindOf does not see through wrapping")
	}
}

// TestTypedProblemKeepsItsKind: a problem that names its own type is
// answered with that type, and with the status of its kind.
func TestTypedProblemKeepsItsKind(t *testing.T) {
	err := fmt.Errorf("deploy: %w", &Error{Kind: Conflict, Type: "quota-exceeded", Detail: "quota exceeded: max_apps 3, in use 3 (this request adds 1)"})
	rec := httptest.NewRecorder()
	Write(rec, err, "req_3")
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 409 || b.Type != "urn:proximity:problem:quota-exceeded" || b.Detail != "quota exceeded: max_apps 3, in use 3 (this request adds 1)" {
		t.Fatalf("typed problem: %d %+v", rec.Code, b)
	}
	if !Is(err, Conflict) || TypeOf(err) != "quota-exceeded" {
		t.Fatalf("kind %v, type %q", KindOf(err), TypeOf(err))
	}
	// Without a type, the kind names the problem; an internal error never
	// shows a type of its own.
	if b := BodyFor(E(Conflict, "x"), "r"); b.Type != "urn:proximity:problem:conflict" {
		t.Fatalf("untyped: %q", b.Type)
	}
	if b := BodyFor(&Error{Type: "secret-thing", Detail: "x"}, "r"); b.Type != "urn:proximity:problem:internal" {
		t.Fatalf("internal: %q", b.Type)
	}
}

// A wrapper that sets no kind carries its cause's, through fmt's %w and
// errors.Join too; the caller sees the cause's detail, not the wrapper's.
func TestKindOfLooksThroughUnsetWrappers(t *testing.T) {
	nf := E(NotFound, "app app_1 does not exist")
	for name, err := range map[string]error{
		"Wrap":         Wrap(Internal, nf, "reading the app"),
		"Wrap of %w":   Wrap(Internal, fmt.Errorf("store: %w", nf), "reading the app"),
		"%w: %w":       fmt.Errorf("%w: %w", errors.New("first"), nf),
		"errors.Join":  errors.Join(errors.New("first"), Wrap(Internal, nf, "")),
		"two wrappers": Wrap(Internal, Wrap(Internal, nf, "inner"), "outer"),
	} {
		if k := KindOf(err); k != NotFound {
			t.Errorf("%s: KindOf = %v, want not-found", name, k)
		}
		if b := BodyFor(err, "req_1"); b.Status != 404 || b.Detail != "app app_1 does not exist" {
			t.Errorf("%s: body %+v", name, b)
		}
	}
	// The outer kind wins when it is set.
	if k := KindOf(Wrap(Conflict, nf, "busy")); k != Conflict {
		t.Errorf("KindOf = %v, want conflict", k)
	}
	typed := &Error{Kind: Conflict, Type: "capacity", Detail: "no node fits"}
	if got := TypeOf(Wrap(Internal, typed, "placing")); got != "capacity" {
		t.Errorf("TypeOf = %q, want capacity", got)
	}
	if k := KindOf(errors.New("plain")); k != Internal {
		t.Errorf("plain error: %v", k)
	}
	if b := BodyFor(Wrap(Internal, errors.New("disk on fire"), "saving"), "req_2"); b.Status != 500 || strings.Contains(b.Detail, "fire") || strings.Contains(b.Detail, "saving") {
		t.Errorf("internal body %+v", b)
	}
}
