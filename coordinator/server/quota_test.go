package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// TestQuotaTwentyConcurrentDeploysGiveExactlyThree: with a default quota
// of 3 apps, 20 concurrent deploys by one user give exactly 3 apps; the
// other 17 are refused with the quota's problem and hold nothing.
func TestQuotaTwentyConcurrentDeploysGiveExactlyThree(t *testing.T) {
	tc, _, tok := appCluster(t)
	if code, _ := tc.call(0, "PUT", "/api/v1/settings/quotas", tok["alice"], map[string]int{"max_apps": 100}, nil, nil); code != http.StatusForbidden {
		t.Fatalf("PUT quotas as a user: %d", code)
	}
	for _, bad := range []map[string]any{{"max_apps": -1}, {"max_cores": 1 << 31}, {"max_disk": 3}} {
		if code, _ := tc.call(0, "PUT", "/api/v1/settings/quotas", tok["admin"], bad, nil, nil); code != http.StatusBadRequest {
			t.Fatalf("PUT quotas %v: %d", bad, code)
		}
	}
	var q fsm.Quota
	if code, err := tc.call(0, "PUT", "/api/v1/settings/quotas", tok["admin"], map[string]int{"max_apps": 3}, nil, &q); err != nil || code != 200 || q != (fsm.Quota{MaxApps: 3}) {
		t.Fatalf("PUT quotas: %d %v %+v", code, err, q)
	}
	q = fsm.Quota{}
	if code, err := tc.call(0, "GET", "/api/v1/settings/quotas", tok["admin"], nil, nil, &q); err != nil || code != 200 || q != (fsm.Quota{MaxApps: 3}) {
		t.Fatalf("GET quotas: %d %v %+v", code, err, q)
	}

	type answer struct {
		code int
		body struct {
			ID, Type, Detail string
			Status           any // the problem's status, or the app's
		}
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			var err error
			a.code, err = tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": fmt.Sprintf("quota-%d", i)}, nil, &a.body)
			if err != nil {
				a.code = -1
			}
		}()
	}
	wg.Wait()
	accepted := map[string]bool{}
	refused := 0
	for i, a := range answers {
		switch a.code {
		case http.StatusAccepted:
			accepted[a.body.ID] = true
		case http.StatusConflict:
			refused++
			if a.body.Type != "urn:proximity:problem:quota-exceeded" || a.body.Status != float64(409) ||
				a.body.Detail != "quota exceeded: max_apps 3, in use 3 (this request adds 1)" {
				t.Errorf("deploy %d refused with %+v", i, a.body)
			}
		default:
			t.Errorf("deploy %d: %d %+v", i, a.code, a.body)
		}
	}
	if len(accepted) != 3 || refused != 17 {
		t.Fatalf("%d accepted and %d refused, want 3 and 17", len(accepted), refused)
	}
	tc.leaderServer().Cluster().FSM().Read(func(s *fsm.State) {
		held := 0
		for _, r := range s.Reservations {
			if accepted[strings.TrimPrefix(r.Owner, "app:")] {
				held++
			}
		}
		if held != 3 || len(s.Reservations) != 3 || len(s.Apps) != 3 {
			t.Fatalf("%d of %d reservations held by the 3 apps, %d apps", held, len(s.Reservations), len(s.Apps))
		}
		if u := s.UsageOf(s.Apps[firstKey(accepted)].Owner); u.Apps != 3 {
			t.Fatalf("usage %+v", u)
		}
	})
	// Another user is not held to alice's usage.
	if code, _ := tc.call(0, "POST", "/api/v1/apps", tok["bob"], map[string]any{"catalog_id": "homepage", "hostname": "bobs"}, nil, nil); code != http.StatusAccepted {
		t.Fatalf("bob's deploy: %d", code)
	}
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}
