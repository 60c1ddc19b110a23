package server

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/coordinator/api"
)

// TestAuditFindings01To06And25And26AuthorizationMatrix walks every route the
// router has, as anonymous, as the owner of an app, as another user and as
// an admin. Routes on an app or its backups answer another user 404 (not
// 403, so apps cannot be enumerated) and never 2xx; the owner and admins
// get through; admin-only routes refuse users with 403; nobody gets
// through without a token. New routes are in the walk by construction.
func TestAuditFindings01To06And25And26AuthorizationMatrix(t *testing.T) {
	tc, _, tok := appCluster(t)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "matrix"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	var b backupOut
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, &b); err != nil || code != 202 {
		t.Fatalf("backup: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")

	var alice struct {
		ID string `json:"id"`
	}
	if code, err := tc.call(0, "GET", "/api/v1/me", tok["alice"], nil, nil, &alice); err != nil || code != 200 {
		t.Fatalf("me: %d %v", code, err)
	}

	// Bob also signs in as a browser: his session cookie (with its CSRF
	// header) must get what his token gets, route by route.
	var bob struct {
		ID string `json:"id"`
	}
	if code, err := tc.call(0, "GET", "/api/v1/me", tok["bob"], nil, nil, &bob); err != nil || code != 200 {
		t.Fatalf("me: %d %v", code, err)
	}
	tc.setPassword(bob.ID, "bob's long password")
	bobBrowser, code, _, _ := tc.login(tc.http, 0, "bob", "bob's long password")
	if code != 200 {
		t.Fatalf("bob's login: %d", code)
	}

	routes := api.New(api.Config{Backend: tc.nodes[0].server().Cluster()}).Routes()
	// Deleting the app goes last, so every other route still finds it,
	// and deleting the backup just before it, so every other route still
	// finds the backup (an operation may end between two calls).
	last := func(rt api.RouteInfo) int {
		switch {
		case rt.Method == "DELETE" && rt.Pattern == "/api/v1/apps/{id}":
			return 2
		case rt.Method == "DELETE" && rt.Pattern == "/api/v1/apps/{id}/backups/{bid}":
			return 1
		}
		return 0
	}
	sort.SliceStable(routes, func(i, j int) bool { return last(routes[i]) < last(routes[j]) })
	for _, rt := range routes {
		id := a.ID
		if strings.HasPrefix(rt.Pattern, "/api/v1/users/{id}") {
			id = alice.ID
		}
		path := strings.NewReplacer("{id}", id, "{bid}", b.ID, "{name}", "ghost", "{tid}", "tok_ghost").Replace(rt.Pattern)
		onApp := strings.HasPrefix(rt.Pattern, "/api/v1/apps/{id}")
		call := func(token string) (int, string) {
			st, _, body := tc.raw(0, rt.Method, path, token, "{}", nil)
			return st, string(body)
		}
		if rt.Public {
			continue
		}
		if st, body := call(""); st != http.StatusUnauthorized {
			t.Fatalf("%s %s anonymous: %d %s", rt.Method, path, st, body)
		}
		st, body := call(tok["bob"])
		if rt.Pattern != "/api/v1/logout" {
			if cst, cbody := bobBrowser.do(0, rt.Method, path, "{}", map[string]string{"X-CSRF-Token": bobBrowser.csrf.Value}); cst != st {
				t.Fatalf("%s %s with another user's session cookie: %d %s, with his token %d", rt.Method, path, cst, cbody, st)
			}
		}
		switch {
		case rt.Admin && st != http.StatusForbidden:
			t.Fatalf("%s %s as a user: %d %s", rt.Method, path, st, body)
		case rt.Self && st != http.StatusNotFound:
			t.Fatalf("%s %s as another user: %d %s (want 404)", rt.Method, path, st, body)
		case onApp && st != http.StatusNotFound:
			t.Fatalf("%s %s as another user: %d %s (want 404)", rt.Method, path, st, body)
		case st/100 == 2 && onApp:
			t.Fatalf("%s %s as another user succeeded", rt.Method, path)
		}
		if onApp || rt.Self {
			// A made-up {tid} is not found, even for its user.
			if st, body := call(tok["alice"]); st == 401 || st == 403 || (st == 404 && !strings.Contains(rt.Pattern, "{tid}")) || st >= 500 {
				t.Fatalf("%s %s as the owner: %d %s", rt.Method, path, st, body)
			}
		}
		if st, body := call(tok["admin"]); st == 401 || st == 403 || st >= 500 || (onApp && st == 404) {
			t.Fatalf("%s %s as admin: %d %s", rt.Method, path, st, body)
		}
	}
}
