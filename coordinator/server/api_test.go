package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/coordinator/api"
)

// userToken creates a user with the given role and returns its token.
func (tc *testCluster) userToken(name, role string) string {
	tc.t.Helper()
	var u struct{ ID string }
	if st, err := tc.call(0, "POST", "/api/v1/users", tc.token, map[string]any{"name": name, "role": role}, nil, &u); err != nil || st != 201 {
		tc.t.Fatalf("create user: %d %v", st, err)
	}
	var tok struct{ ID, Token string }
	if st, err := tc.call(0, "POST", "/api/v1/users/"+u.ID+"/tokens", tc.token, nil, nil, &tok); err != nil || st != 201 || tok.Token == "" {
		tc.t.Fatalf("create token: %d %v", st, err)
	}
	return tok.Token
}

// raw sends a request with a raw body and returns status, headers, body.
func (tc *testCluster) raw(i int, method, path, token, body string, hdr map[string]string) (int, http.Header, []byte) {
	tc.t.Helper()
	req, _ := http.NewRequest(method, tc.nodes[i].url()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := tc.http.Do(req)
	if err != nil {
		tc.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A stream (GET /api/v1/events) lasts until the client leaves:
		// its first line is its answer here.
		line, _ := bufio.NewReader(resp.Body).ReadBytes('\n')
		return resp.StatusCode, resp.Header, line
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// assertProblem checks the one error format: problem+json with every field.
func assertProblem(t *testing.T, status int, h http.Header, body []byte, wantStatus int) problemDoc {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %s", ct, body)
	}
	var p problemDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("not a problem document: %v: %s", err, body)
	}
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" || !strings.HasPrefix(p.RequestID, "req_") {
		t.Fatalf("incomplete problem document: %s", body)
	}
	if h.Get("X-Request-ID") != p.RequestID {
		t.Fatalf("X-Request-ID %q differs from request_id %q", h.Get("X-Request-ID"), p.RequestID)
	}
	return p
}

// TestAuthorizationEveryRoute walks every route in the route table as
// anonymous, as a user and as an admin, on the leader and on a follower.
func TestAuthorizationEveryRoute(t *testing.T) {
	tc := newTestCluster(t, 3)
	user := tc.userToken("alice", "user")
	routes := api.New(api.Config{Backend: tc.nodes[0].server().Cluster()}).Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes", len(routes))
	}
	follower := (tc.waitLeader() + 1) % 3
	for _, rt := range routes {
		path := strings.ReplaceAll(rt.Pattern, "{id}", "does-not-exist")
		for _, node := range []int{tc.waitLeader(), follower} {
			st, h, b := tc.raw(node, rt.Method, path, "", "{}", nil)
			if rt.Public {
				if st >= 500 && st != 503 {
					t.Fatalf("%s %s anonymous: %d", rt.Method, path, st)
				}
				continue
			}
			assertProblem(t, st, h, b, 401)
			// A forged token: 401, or 429 once this address has failed
			// too often (TestFailedAuthIsThrottled).
			st, h, b = tc.raw(node, rt.Method, path, "pxt_forged", "{}", nil)
			if st != http.StatusTooManyRequests {
				assertProblem(t, st, h, b, 401)
			}
			st, h, b = tc.raw(node, rt.Method, path, user, "{}", nil)
			if rt.Admin {
				assertProblem(t, st, h, b, 403)
			} else if st == 401 || st == 403 {
				t.Fatalf("%s %s as user: %d", rt.Method, path, st)
			}
			st, _, b = tc.raw(node, rt.Method, path, tc.token, "{}", nil)
			if st == 401 || st == 403 || st >= 500 {
				t.Fatalf("%s %s as admin through server %d: %d %s", rt.Method, path, node, st, b)
			}
		}
	}
}

// TestAuditFinding20ErrorFormatIsProblemJSON checks that every kind of
// error, from every layer, comes in the one format.
func TestAuditFinding20ErrorFormatIsProblemJSON(t *testing.T) {
	tc := newTestCluster(t, 1)
	cases := []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"unknown path", "GET", "/api/v1/nope", tc.token, "", 404},
		{"unknown root path", "GET", "/favicon.ico", "", "", 404},
		{"wrong method", "PATCH", "/api/v1/reservations", tc.token, "{}", 405},
		{"no token", "GET", "/api/v1/reservations", "", "", 401},
		{"malformed json", "POST", "/api/v1/reservations", tc.token, `{"hostname":`, 400},
		{"unknown field", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1","vmid":5}`, 400},
		{"wrong type", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1","public_ports":"two"}`, 400},
		{"trailing data", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1"} {}`, 400},
		{"empty body", "POST", "/api/v1/reservations", tc.token, ``, 400},
		{"bad node", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve 1"}`, 400},
		{"too many ports", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1","public_ports":1000}`, 400},
		{"negative ports", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1","public_ports":-1}`, 400},
		{"ip without subnet", "POST", "/api/v1/reservations", tc.token, `{"hostname":"a","node":"pve1","ip":true}`, 400},
		{"missing reservation", "GET", "/api/v1/reservations/rsv_nope", tc.token, "", 404},
		{"release missing", "DELETE", "/api/v1/reservations/rsv_nope", tc.token, "", 404},
		{"bad role", "POST", "/api/v1/users", tc.token, `{"name":"x","role":"root"}`, 400},
		{"token for nobody", "POST", "/api/v1/users/usr_nope/tokens", tc.token, ``, 404},
		{"bad idempotency key", "POST", "/api/v1/users", tc.token, `{"name":"y","role":"user"}`, 400},
		{"too large", "POST", "/api/v1/reservations", tc.token, `{"hostname":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.name == "bad idempotency key" {
				hdr["Idempotency-Key"] = "has space"
			}
			st, h, b := tc.raw(0, c.method, c.path, c.token, c.body, hdr)
			p := assertProblem(t, st, h, b, c.status)
			if strings.Contains(p.Detail, "runtime error") || strings.Contains(p.Detail, "goroutine") {
				t.Fatalf("detail leaks internals: %s", p.Detail)
			}
		})
	}
	// Nothing above changed the registry.
	if rs := tc.listAll(0); len(rs) != 0 {
		t.Fatalf("bad input created %d reservations", len(rs))
	}
}

// TestAuditFinding17HostnameValidationAtTheAPI checks hostname rules at
// the edge.
func TestAuditFinding17HostnameValidationAtTheAPI(t *testing.T) {
	tc := newTestCluster(t, 1)
	for _, h := range []string{"", "-x", "x-", "a_b", "a b", "999", "a..b", strings.Repeat("a", 64), "<script>"} {
		body, _ := json.Marshal(map[string]any{"hostname": h, "node": "pve1"})
		st, hd, b := tc.raw(0, "POST", "/api/v1/reservations", tc.token, string(body), nil)
		p := assertProblem(t, st, hd, b, 400)
		if !strings.Contains(p.Detail, "hostname") {
			t.Fatalf("detail does not name the field: %s", p.Detail)
		}
	}
}

// TestAuditFinding29PaginationValidated checks page and per_page.
func TestAuditFinding29PaginationValidated(t *testing.T) {
	tc := newTestCluster(t, 1)
	for _, q := range []string{"page=0", "page=-1", "page=x", "per_page=0", "per_page=101", "per_page=1e3"} {
		st, h, b := tc.raw(0, "GET", "/api/v1/reservations?"+q, tc.token, "", nil)
		assertProblem(t, st, h, b, 400)
	}
	for i := 0; i < 5; i++ {
		body, _ := json.Marshal(map[string]any{"hostname": "p" + string(rune('a'+i)), "node": "pve1"})
		if st, _, b := tc.raw(0, "POST", "/api/v1/reservations", tc.token, string(body), nil); st != 201 {
			t.Fatalf("reserve: %d %s", st, b)
		}
	}
	var p reservationPage
	st, err := tc.call(0, "GET", "/api/v1/reservations?page=2&per_page=2", tc.token, nil, nil, &p)
	if err != nil || st != 200 || p.Total != 5 || p.Page != 2 || p.PerPage != 2 || len(p.Items) != 2 || p.Items[0].Hostname != "pc" {
		t.Fatalf("page 2: %d %v %+v", st, err, p)
	}
	st, _ = tc.call(0, "GET", "/api/v1/reservations?page=9", tc.token, nil, nil, &p)
	if st != 200 || len(p.Items) != 0 || p.Total != 5 {
		t.Fatalf("page past the end: %d %+v", st, p)
	}
}

func TestIdempotentWritesReturnTheFirstAnswer(t *testing.T) {
	tc := newTestCluster(t, 3)
	body := map[string]any{"request_id": "once", "hostname": "idem", "node": "pve1", "public_ports": 2}
	var first, again reservation
	if st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, body, nil, &first); err != nil || st != 201 {
		t.Fatalf("first: %d %v", st, err)
	}
	for i := range tc.nodes {
		if st, err := tc.call(i, "POST", "/api/v1/reservations", tc.token, body, nil, &again); err != nil || st != 201 || again.ID != first.ID || again.VMID != first.VMID {
			t.Fatalf("repeat via %d: %d %v %+v", i, st, err, again)
		}
	}
	body["hostname"] = "other"
	st, h, b := tc.raw(1, "POST", "/api/v1/reservations", tc.token, mustJSON(body), nil)
	assertProblem(t, st, h, b, 409)
	// Idempotency-Key on a delete: the retry answers 204 again, not 404.
	key := map[string]string{"Idempotency-Key": "del-once"}
	for i := 0; i < 2; i++ {
		if st, _, b := tc.raw(i, "DELETE", "/api/v1/reservations/"+first.ID, tc.token, "", key); st != 204 {
			t.Fatalf("delete attempt %d: %d %s", i, st, b)
		}
	}
	if st, _, _ := tc.raw(2, "DELETE", "/api/v1/reservations/"+first.ID, tc.token, "", nil); st != 404 {
		t.Fatalf("delete without key after release: %d, want 404", st)
	}
}

func TestNetworkSettingsAndStaticAddresses(t *testing.T) {
	tc := newTestCluster(t, 1)
	for _, bad := range []string{
		`{"subnet":"10.0.0.0/33","gateway":"10.0.0.1","dns":[],"bridge":"vmbr0"}`,
		`{"subnet":"10.0.0.1/24","gateway":"10.0.0.1","dns":[],"bridge":"vmbr0"}`,
		`{"subnet":"10.0.0.0/24","gateway":"10.0.1.1","dns":[],"bridge":"vmbr0"}`,
		`{"subnet":"10.0.0.0/24","gateway":"10.0.0.1","dns":["x"],"bridge":"vmbr0"}`,
	} {
		st, h, b := tc.raw(0, "PUT", "/api/v1/settings/network", tc.token, bad, nil)
		assertProblem(t, st, h, b, 400)
	}
	good := `{"subnet":"10.20.0.0/29","gateway":"10.20.0.1","dns":["10.20.0.1"],"bridge":"vmbr0"}`
	if st, _, b := tc.raw(0, "PUT", "/api/v1/settings/network", tc.token, good, nil); st != 200 {
		t.Fatalf("put network: %d %s", st, b)
	}
	var got map[string]any
	tc.call(0, "GET", "/api/v1/settings/network", tc.token, nil, nil, &got)
	if got["subnet"] != "10.20.0.0/29" || got["gateway"] != "10.20.0.1" {
		t.Fatalf("network settings: %v", got)
	}
	// A /29 has six host addresses, one of them the gateway.
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		var r reservation
		if st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "ip" + string(rune('a'+i)), "node": "pve1", "ip": true}, nil, &r); err != nil || st != 201 {
			t.Fatalf("reserve with ip: %d %v", st, err)
		}
		if r.IP == "" || r.IP == "10.20.0.1" || seen[r.IP] {
			t.Fatalf("bad address %q", r.IP)
		}
		seen[r.IP] = true
	}
	st, h, b := tc.raw(0, "POST", "/api/v1/reservations", tc.token, `{"hostname":"ipf","node":"pve1","ip":true}`, nil)
	if p := assertProblem(t, st, h, b, 409); !strings.Contains(p.Type, "exhausted") {
		t.Fatalf("want exhausted, got %s", p.Type)
	}
	// Pools can be narrowed; new reservations follow.
	if st, _, b := tc.raw(0, "PUT", "/api/v1/settings/registry", tc.token, `{"vmid_min":500,"vmid_max":600,"port_min":40000,"port_max":40010}`, nil); st != 200 {
		t.Fatalf("put pools: %d %s", st, b)
	}
	var r reservation
	if st, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "narrow", "node": "pve1", "public_ports": 1}, nil, &r); err != nil || st != 201 || r.VMID != 500 || r.PublicPorts[0] != 40000 {
		t.Fatalf("reservation after pool change: %d %v %+v", st, err, r)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestHealthReadyMetricsAndDashboard checks the server's unversioned
// paths: health, readiness, metrics, and the web dashboard at every path
// outside the API's, while an unknown API path stays a problem document.
func TestHealthReadyMetricsAndDashboard(t *testing.T) {
	tc := newTestCluster(t, 1)
	if st, _, b := tc.raw(0, "GET", "/healthz", "", "", nil); st != 200 || !strings.Contains(string(b), "ok") {
		t.Fatalf("healthz: %d %s", st, b)
	}
	if st, _, b := tc.raw(0, "GET", "/readyz", "", "", nil); st != 200 {
		t.Fatalf("readyz: %d %s", st, b)
	}
	tc.raw(0, "POST", "/api/v1/reservations", tc.token, `{"hostname":"m","node":"pve1"}`, nil)
	st, _, b := tc.raw(0, "GET", "/metrics", tc.token, "", nil)
	for _, want := range []string{"proximity_http_requests_total", "proximity_raft_leader 1", "proximity_registry_reservations 1", "go_goroutines"} {
		if st != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q (status %d)", want, st)
		}
	}
	for _, p := range []string{"/", "/catalog", "/apps/app_x/logs"} {
		st, h, b := tc.raw(0, "GET", p, "", "", nil)
		if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(string(b), "Proximity") {
			t.Errorf("GET %s: %d %s CSP %q", p, st, h.Get("Content-Type"), h.Get("Content-Security-Policy"))
		}
	}
	for _, p := range []string{"/api/v1/nope", "/api/v2/apps", "/api"} {
		if st, h, _ := tc.raw(0, "GET", p, "", "", nil); st != 404 || h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want a 404 problem", p, st, h.Get("Content-Type"))
		}
	}
	if st, _, b := tc.raw(0, "GET", "/api/v1/auth/methods", "", "", nil); st != 200 || string(b) != `{"oidc":{"enabled":false},"password":true}`+"\n" {
		t.Errorf("auth methods: %d %s", st, b)
	}
}
