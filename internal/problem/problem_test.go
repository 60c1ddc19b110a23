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
