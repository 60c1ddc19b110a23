package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/api"
	"github.com/proximity-ve/proximity/coordinator/fsm"
)

type auditPage struct {
	Items []fsm.AuditRecord `json:"items"`
	Total int               `json:"total"`
}

// auditLog reads every record through server i, and the raw JSON of
// every page.
func (tc *testCluster) auditLog(i int, query string) ([]fsm.AuditRecord, string) {
	tc.t.Helper()
	var all []fsm.AuditRecord
	var raw strings.Builder
	for page := 1; ; page++ {
		st, _, body := tc.raw(i, "GET", fmt.Sprintf("/api/v1/audit?page=%d&per_page=100%s", page, query), tc.token, "", nil)
		if st != http.StatusOK {
			tc.t.Fatalf("list audit: %d %s", st, body)
		}
		raw.Write(body)
		var p auditPage
		if err := json.Unmarshal(body, &p); err != nil {
			tc.t.Fatal(err)
		}
		all = append(all, p.Items...)
		if len(all) >= p.Total || len(p.Items) == 0 {
			return all, raw.String()
		}
	}
}

// sent is one request a test made and the record it expects.
type sent struct {
	route, method string
	status        int
	requestID     string
	targets       []string
	actor         string // the actor's name; "" for none
}

// waitAudited waits until server i lists a record for every request in
// want, then checks each: exactly one record, with its route, method,
// status, targets and actor. It returns every record.
func (tc *testCluster) waitAudited(i int, want []sent) ([]fsm.AuditRecord, string) {
	tc.t.Helper()
	var recs []fsm.AuditRecord
	var raw string
	byID := map[string][]fsm.AuditRecord{}
	waitFor(tc.t.(*testing.T), "every request in the audit log", 20*time.Second, func() bool {
		recs, raw = tc.auditLog(i, "")
		byID = map[string][]fsm.AuditRecord{}
		for _, r := range recs {
			byID[r.RequestID] = append(byID[r.RequestID], r)
		}
		for _, w := range want {
			if len(byID[w.requestID]) == 0 {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		rs := byID[w.requestID]
		if len(rs) != 1 {
			tc.t.Errorf("%s %s: %d records, want 1: %+v", w.method, w.route, len(rs), rs)
			continue
		}
		r := rs[0]
		if r.Route != w.method+" "+w.route || r.Method != w.method || r.Status != w.status || r.Actor.Name != w.actor {
			tc.t.Errorf("%s %s answered %d by %q; recorded %+v", w.method, w.route, w.status, w.actor, r)
		}
		for _, tg := range w.targets {
			if !contains(r.Targets, tg) {
				tc.t.Errorf("%s %s: targets %v lack %s", w.method, w.route, r.Targets, tg)
			}
		}
		if w.actor != "" && r.Actor.UserID == "" || (w.actor != "" && r.Actor.TokenID == "" && r.Actor.SessionID == "") {
			tc.t.Errorf("%s %s: actor %+v lacks the user or token ID", w.method, w.route, r.Actor)
		}
		if r.Source == "" || r.Time.IsZero() || !strings.HasPrefix(r.ID, "aud_") {
			tc.t.Errorf("%s %s: record %+v lacks source, time or ID", w.method, w.route, r)
		}
	}
	return recs, raw
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// TestAuditRecordsEveryMutatingRoute walks every route of the route table
// with an unsafe method, as an admin, on the leader and on a follower
// alternately, with a body that carries a password and a token secret.
// Whatever each answers, exactly one record names its route, method,
// status, request ID, path parameters and actor. Denied requests (401
// with a bad token and with none, 403 for a user on an admin route) are
// recorded too, a plain read is not, and no record holds any token or
// password the test used. New routes are in the walk by construction.
func TestAuditRecordsEveryMutatingRoute(t *testing.T) {
	tc := newTestCluster(t, 3)
	bob := tc.userToken("bob", "user")
	const password = "correct-horse-battery-staple-7f3a"
	badToken := "pxt_" + strings.Repeat("Z", 43)
	bodySecret := "pxt_bodysecret" + strings.Repeat("Q", 30)
	body := fmt.Sprintf(`{"name":"audit-walk","password":%q,"token":%q}`, password, bodySecret)

	leader := tc.waitLeader()
	follower := (leader + 1) % len(tc.nodes)
	var want []sent
	routes := api.New(api.Config{Backend: tc.nodes[0].server().Cluster()}).Routes()
	n := 0
	for _, rt := range routes {
		if rt.Method == "GET" || rt.Method == "HEAD" {
			continue
		}
		var targets []string
		path := pathParam.ReplaceAllStringFunc(rt.Pattern, func(p string) string {
			v := fmt.Sprintf("walk-%s-%d", strings.Trim(p, "{}"), n)
			targets = append(targets, v)
			return v
		})
		server := []int{leader, follower}[n%2]
		n++
		st, h, out := tc.raw(server, rt.Method, path, tc.token, body, map[string]string{"Content-Type": "application/json"})
		if h.Get("X-Request-ID") == "" {
			t.Fatalf("%s %s: no request ID: %d %s", rt.Method, path, st, out)
		}
		actor := "admin"
		if rt.Public {
			actor = "" // a public route does not look at the token
		}
		want = append(want, sent{route: rt.Pattern, method: rt.Method, status: st, requestID: h.Get("X-Request-ID"), targets: targets, actor: actor})
	}
	if n == 0 {
		t.Fatal("the route table has no mutating route")
	}
	// Denied requests, on either server.
	for _, d := range []struct {
		server  int
		method  string
		pattern string
		token   string
		status  int
		actor   string
	}{
		{follower, "GET", "/api/v1/nodes", badToken, 401, ""},
		{leader, "GET", "/api/v1/apps", "", 401, ""},
		{follower, "GET", "/api/v1/nodes", bob, 403, "bob"},
		{leader, "DELETE", "/api/v1/reservations/{id}", bob, 403, "bob"},
	} {
		path := strings.ReplaceAll(d.pattern, "{id}", "denied-target")
		st, h, out := tc.raw(d.server, d.method, path, d.token, "", nil)
		if st != d.status {
			t.Fatalf("%s %s: %d %s, want %d", d.method, path, st, out, d.status)
		}
		var targets []string
		if strings.Contains(d.pattern, "{id}") {
			targets = []string{"denied-target"}
		}
		want = append(want, sent{route: d.pattern, method: d.method, status: st, requestID: h.Get("X-Request-ID"), targets: targets, actor: d.actor})
	}
	// A read that succeeds is not recorded.
	_, readHdr, _ := tc.raw(follower, "GET", "/api/v1/reservations", tc.token, "", nil)

	recs, raw := tc.waitAudited(leader, want)
	for _, r := range recs {
		if r.RequestID == readHdr.Get("X-Request-ID") {
			t.Errorf("a successful GET was recorded: %+v", r)
		}
	}
	for name, secret := range map[string]string{"admin token": tc.token, "user token": bob, "bad token": badToken,
		"password": password, "token in a body": bodySecret} {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
	// Every record is listed by the followers too, and the filters work.
	waitFor(t, "the follower's copy", 10*time.Second, func() bool {
		got, _ := tc.auditLog(follower, "")
		return len(got) == len(recs)
	})
	byBob, _ := tc.auditLog(leader, "&actor=bob")
	if len(byBob) != 2 {
		t.Errorf("actor=bob lists %d records, want the 2 denials", len(byBob))
	}
	byTarget, _ := tc.auditLog(leader, "&target=denied-target")
	if len(byTarget) != 1 || byTarget[0].Status != 403 {
		t.Errorf("target=denied-target lists %+v", byTarget)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	if late, _ := tc.auditLog(leader, "&since="+future); len(late) != 0 {
		t.Errorf("since an hour from now lists %d records", len(late))
	}
	if st, _, out := tc.raw(leader, "GET", "/api/v1/audit?since=yesterday", tc.token, "", nil); st != 400 {
		t.Errorf("since=yesterday: %d %s", st, out)
	}
}

// TestAuditLogSurvivesLeaderChangeAndRetention records writes on a
// three-server cluster, kills the leader and finds every record through a
// survivor; then a retention of three records keeps the newest three.
func TestAuditLogSurvivesLeaderChangeAndRetention(t *testing.T) {
	tc := newTestCluster(t, 3)
	leader := tc.waitLeader()
	var want []sent
	for i := range 6 {
		server := (leader + i) % 3
		st, h, out := tc.raw(server, "POST", "/api/v1/reservations", tc.token,
			fmt.Sprintf(`{"hostname":"audit-%d","node":"pve1"}`, i), nil)
		if st != 201 {
			t.Fatalf("reserve: %d %s", st, out)
		}
		var r reservation
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		// The created reservation's ID is a target.
		want = append(want, sent{route: "/api/v1/reservations", method: "POST", status: 201,
			requestID: h.Get("X-Request-ID"), targets: []string{r.ID}, actor: "admin"})
	}
	tc.waitAudited(leader, want)

	tc.kill(leader)
	survivor := (leader + 1) % 3
	waitFor(t, "a new leader", 30*time.Second, func() bool { i := tc.leader(); return i >= 0 && i != leader })
	tc.waitAudited(survivor, want)

	st, h, out := tc.raw(survivor, "PUT", "/api/v1/settings/audit", tc.token, `{"max_records":3,"max_age":"24h"}`, nil)
	if st != 200 {
		t.Fatalf("set retention: %d %s", st, out)
	}
	putID := h.Get("X-Request-ID")
	var recs []fsm.AuditRecord
	waitFor(t, "the retention setting's own record", 10*time.Second, func() bool {
		recs, _ = tc.auditLog(survivor, "")
		return len(recs) > 0 && recs[0].RequestID == putID
	})
	// The log is in the order records were applied, which for requests
	// to different servers need not be the order they were answered.
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.requestID] = true
	}
	if len(recs) != 3 || !wanted[recs[1].RequestID] || !wanted[recs[2].RequestID] {
		t.Fatalf("after max_records 3: %+v", recs)
	}
	var p struct {
		MaxRecords int    `json:"max_records"`
		MaxAge     string `json:"max_age"`
	}
	if st, err := tc.call(survivor, "GET", "/api/v1/settings/audit", tc.token, nil, nil, &p); err != nil || st != 200 || p.MaxRecords != 3 || p.MaxAge != "24h0m0s" {
		t.Fatalf("retention reads back %d %+v %v", st, p, err)
	}
	if st, _, out := tc.raw(survivor, "PUT", "/api/v1/settings/audit", tc.token, `{"max_records":0,"max_age":"24h"}`, nil); st != 400 {
		t.Fatalf("max_records 0: %d %s", st, out)
	}
}

// TestAuditUnauthenticatedFloodIsBounded sends a flood of requests with a
// bad token from one address: the log keeps a burst of them and then
// about one a second, so refused requests cannot flood Raft or push real
// users' records out of the retention.
func TestAuditUnauthenticatedFloodIsBounded(t *testing.T) {
	tc := newTestCluster(t, 1)
	bad := "pxt_" + strings.Repeat("B", 43)
	flood := map[string]bool{}
	start := time.Now()
	for range 60 {
		st, h, _ := tc.raw(0, "GET", "/api/v1/nodes", bad, "", nil)
		if st != 401 && st != 429 {
			t.Fatalf("bad token: %d", st)
		}
		flood[h.Get("X-Request-ID")] = true
	}
	elapsed := time.Since(start)
	// A record queued after the flood: once it is listed, so is every
	// flood record that was kept.
	st, h, out := tc.raw(0, "PUT", "/api/v1/settings/audit", tc.token, `{"max_records":10000,"max_age":"2160h"}`, nil)
	if st != 200 {
		t.Fatalf("marker: %d %s", st, out)
	}
	marker := h.Get("X-Request-ID")
	var recs []fsm.AuditRecord
	waitFor(t, "the marker record", 10*time.Second, func() bool {
		recs, _ = tc.auditLog(0, "")
		return len(recs) > 0 && recs[0].RequestID == marker
	})
	kept := 0
	for _, r := range recs {
		if flood[r.RequestID] {
			kept++
		}
	}
	if most := 20 + int(elapsed.Seconds()) + 1; kept < 20 || kept > most {
		t.Fatalf("kept %d of 60 refused requests in %s, want 20-%d", kept, elapsed, most)
	}
}
