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
