package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/proximity-ve/proximity/internal/problem"
)

// access is who may call a route.
type access int

const (
	public      access = iota // anyone, no token
	anyUser                   // any valid token
	adminOnly                 // a token of an admin
	selfOrAdmin               // the user named by {id}, or an admin
)

// where a route runs.
type where int

const (
	local  where = iota // on the server that received it
	leader              // on the leader; reads use the read index
)

type handlerFunc func(rq *request) (status int, body any, err error)

type route struct {
	method  string
	pattern string // net/http pattern path
	access  access
	where   where
	name    string // for metrics: the pattern
	h       handlerFunc
	// stream routes answer with a stream the handler writes itself
	// (sse.go); the request's deadline does not bound it.
	stream bool
	// audit, when set, puts every request of the route in the audit log
	// under this action, whatever its method (a read of secrets).
	audit string
}

// table is every route the API serves. Authorization is declared here and
// nowhere else.
func (a *API) table() []*route {
	return []*route{
		{method: "GET", pattern: "/healthz", access: public, where: local, h: a.healthz},
		{method: "GET", pattern: "/readyz", access: public, where: local, h: a.readyz},

		{method: "GET", pattern: "/api/v1/auth/methods", access: public, where: local, h: a.authMethods},
		{method: "GET", pattern: "/api/v1/cluster", access: adminOnly, where: local, h: a.getCluster},
		{method: "DELETE", pattern: "/api/v1/cluster/members/{id}", access: adminOnly, where: leader, h: a.removeMember},

		{method: "GET", pattern: "/api/v1/catalog", access: anyUser, where: local, h: a.listCatalog},
		{method: "GET", pattern: "/api/v1/catalog/{id}", access: anyUser, where: local, h: a.getCatalogEntry},
		{method: "POST", pattern: "/api/v1/catalog/reload", access: adminOnly, where: leader, h: a.reloadCatalog},
		{method: "GET", pattern: "/api/v1/catalog/categories", access: anyUser, where: local, h: a.listCategories},
		{method: "GET", pattern: "/api/v1/catalog/icons/{file}", access: public, where: local, h: a.getIcon},
		{method: "GET", pattern: "/api/v1/catalog/{source}/{id}", access: anyUser, where: local, h: a.getCatalogEntry},
		{method: "GET", pattern: "/api/v1/catalog/sources", access: adminOnly, where: leader, h: a.listSources},
		{method: "POST", pattern: "/api/v1/catalog/sources", access: adminOnly, where: leader, h: a.addSource},
		{method: "GET", pattern: "/api/v1/catalog/sources/{name}", access: adminOnly, where: leader, h: a.getSource},
		{method: "DELETE", pattern: "/api/v1/catalog/sources/{name}", access: adminOnly, where: leader, h: a.deleteSource},

		{method: "GET", pattern: "/api/v1/apps", access: anyUser, where: leader, h: a.listApps},
		{method: "POST", pattern: "/api/v1/apps", access: anyUser, where: leader, h: a.createApp},
		{method: "GET", pattern: "/api/v1/apps/{id}", access: anyUser, where: leader, h: a.getApp},
		{method: "DELETE", pattern: "/api/v1/apps/{id}", access: anyUser, where: leader, h: a.deleteApp},
		{method: "PATCH", pattern: "/api/v1/apps/{id}", access: anyUser, where: leader, h: a.patchApp},
		{method: "POST", pattern: "/api/v1/apps/{id}/actions", access: anyUser, where: leader, h: a.postAppAction},
		{method: "GET", pattern: "/api/v1/apps/{id}/logs", access: anyUser, where: leader, stream: true, h: a.appLogs},
		{method: "GET", pattern: "/api/v1/apps/{id}/secrets", access: anyUser, where: leader, audit: auditSecretsRead, h: a.appSecrets},
		{method: "GET", pattern: "/api/v1/apps/{id}/metrics", access: anyUser, where: leader, h: a.appMetrics},
		{method: "POST", pattern: "/api/v1/apps/{id}/clone", access: anyUser, where: leader, h: a.cloneApp},
		{method: "POST", pattern: "/api/v1/apps/{id}/update", access: anyUser, where: leader, h: a.updateApp},
		{method: "GET", pattern: "/api/v1/apps/{id}/backups", access: anyUser, where: leader, h: a.listBackups},
		{method: "POST", pattern: "/api/v1/apps/{id}/backups", access: anyUser, where: leader, h: a.createBackup},
		{method: "POST", pattern: "/api/v1/apps/{id}/backups/{bid}/restore", access: anyUser, where: leader, h: a.restoreBackup},
		{method: "DELETE", pattern: "/api/v1/apps/{id}/backups/{bid}", access: anyUser, where: leader, h: a.deleteBackup},
		{method: "GET", pattern: "/api/v1/apps/{id}/backup-policy", access: anyUser, where: leader, h: a.getBackupPolicy},
		{method: "PUT", pattern: "/api/v1/apps/{id}/backup-policy", access: anyUser, where: leader, h: a.putBackupPolicy},
		{method: "DELETE", pattern: "/api/v1/apps/{id}/backup-policy", access: anyUser, where: leader, h: a.deleteBackupPolicy},

		{method: "GET", pattern: "/api/v1/events", access: anyUser, where: local, stream: true, h: a.events},

		{method: "GET", pattern: "/api/v1/discover", access: adminOnly, where: leader, h: a.discover},
		{method: "POST", pattern: "/api/v1/adopt", access: adminOnly, where: leader, h: a.adopt},

		{method: "GET", pattern: "/api/v1/nodes", access: adminOnly, where: leader, h: a.listNodes},
		{method: "DELETE", pattern: "/api/v1/nodes/{name}", access: adminOnly, where: leader, h: a.removeNode},
		{method: "POST", pattern: "/api/v1/join-tokens", access: adminOnly, where: leader, h: a.createJoinToken},

		{method: "GET", pattern: "/api/v1/reservations", access: adminOnly, where: leader, h: a.listReservations},
		{method: "POST", pattern: "/api/v1/reservations", access: adminOnly, where: leader, h: a.createReservation},
		{method: "GET", pattern: "/api/v1/reservations/{id}", access: adminOnly, where: leader, h: a.getReservation},
		{method: "DELETE", pattern: "/api/v1/reservations/{id}", access: adminOnly, where: leader, h: a.deleteReservation},

		{method: "GET", pattern: "/api/v1/users", access: adminOnly, where: leader, h: a.listUsers},
		{method: "POST", pattern: "/api/v1/users", access: adminOnly, where: leader, h: a.createUser},
		{method: "GET", pattern: "/api/v1/users/{id}", access: selfOrAdmin, where: leader, h: a.getUser},
		{method: "PATCH", pattern: "/api/v1/users/{id}", access: adminOnly, where: leader, h: a.patchUser},
		{method: "DELETE", pattern: "/api/v1/users/{id}", access: adminOnly, where: leader, h: a.deleteUser},
		{method: "PUT", pattern: "/api/v1/users/{id}/password", access: selfOrAdmin, where: leader, h: a.setPassword},
		{method: "GET", pattern: "/api/v1/users/{id}/tokens", access: selfOrAdmin, where: leader, h: a.listTokens},
		{method: "POST", pattern: "/api/v1/users/{id}/tokens", access: selfOrAdmin, where: leader, h: a.createToken},
		{method: "DELETE", pattern: "/api/v1/users/{id}/tokens/{tid}", access: selfOrAdmin, where: leader, h: a.revokeToken},
		{method: "GET", pattern: "/api/v1/me", access: anyUser, where: leader, h: a.me},
		{method: "POST", pattern: "/api/v1/me/totp", access: anyUser, where: leader, h: a.enrolTOTP},
		{method: "POST", pattern: "/api/v1/me/totp/verify", access: anyUser, where: leader, h: a.verifyTOTP},
		{method: "DELETE", pattern: "/api/v1/users/{id}/totp", access: adminOnly, where: leader, h: a.resetTOTP},
		{method: "POST", pattern: "/api/v1/login", access: public, where: leader, h: a.login},
		{method: "POST", pattern: "/api/v1/logout", access: anyUser, where: leader, h: a.logout},
		{method: "GET", pattern: "/api/v1/auth/oidc/login", access: public, where: local, h: a.oidcLogin},
		{method: "GET", pattern: "/api/v1/auth/oidc/callback", access: public, where: leader, h: a.oidcCallback},

		{method: "GET", pattern: "/api/v1/settings/network", access: adminOnly, where: leader, h: a.getNetwork},
		{method: "PUT", pattern: "/api/v1/settings/network", access: adminOnly, where: leader, h: a.putNetwork},
		{method: "PATCH", pattern: "/api/v1/settings/network", access: adminOnly, where: leader, h: a.patchNetwork},
		{method: "GET", pattern: "/api/v1/settings/resources", access: adminOnly, where: leader, h: a.getResources},
		{method: "PUT", pattern: "/api/v1/settings/resources", access: adminOnly, where: leader, h: a.putResources},
		{method: "PATCH", pattern: "/api/v1/settings/resources", access: adminOnly, where: leader, h: a.patchResources},
		{method: "GET", pattern: "/api/v1/settings/registry", access: adminOnly, where: leader, h: a.getPools},
		{method: "PUT", pattern: "/api/v1/settings/registry", access: adminOnly, where: leader, h: a.putPools},
		{method: "PATCH", pattern: "/api/v1/settings/registry", access: adminOnly, where: leader, h: a.patchPools},
		{method: "GET", pattern: "/api/v1/settings/placement", access: adminOnly, where: leader, h: a.getPlacement},
		{method: "PUT", pattern: "/api/v1/settings/placement", access: adminOnly, where: leader, h: a.putPlacement},
		{method: "PATCH", pattern: "/api/v1/settings/placement", access: adminOnly, where: leader, h: a.patchPlacement},
		{method: "GET", pattern: "/api/v1/settings/quotas", access: adminOnly, where: leader, h: a.getQuotas},
		{method: "PUT", pattern: "/api/v1/settings/quotas", access: adminOnly, where: leader, h: a.putQuotas},
		{method: "PATCH", pattern: "/api/v1/settings/quotas", access: adminOnly, where: leader, h: a.patchQuotas},
		{method: "GET", pattern: "/api/v1/settings/audit", access: adminOnly, where: leader, h: a.getAuditPolicy},
		{method: "PUT", pattern: "/api/v1/settings/audit", access: adminOnly, where: leader, h: a.putAuditPolicy},
		{method: "PATCH", pattern: "/api/v1/settings/audit", access: adminOnly, where: leader, h: a.patchAuditPolicy},
		{method: "GET", pattern: "/api/v1/settings/backups", access: adminOnly, where: leader, h: a.getBackupSettings},
		{method: "PUT", pattern: "/api/v1/settings/backups", access: adminOnly, where: leader, h: a.putBackupSettings},
		{method: "PATCH", pattern: "/api/v1/settings/backups", access: adminOnly, where: leader, h: a.patchBackupSettings},

		{method: "GET", pattern: "/api/v1/audit", access: adminOnly, where: leader, h: a.listAudit},
		{method: "GET", pattern: "/api/v1/settings/oidc", access: adminOnly, where: leader, h: a.getOIDC},
		{method: "PUT", pattern: "/api/v1/settings/oidc", access: adminOnly, where: leader, h: a.putOIDC},
		{method: "PATCH", pattern: "/api/v1/settings/oidc", access: adminOnly, where: leader, h: a.patchOIDC},
	}
}

// register installs one handler per path; it dispatches on the method so
// that a wrong method gets a problem document, not net/http's plain text.
func (a *API) register() {
	byPath := map[string][]*route{}
	var paths []string
	for _, rt := range a.routes {
		rt.name = rt.method + " " + rt.pattern
		if _, ok := byPath[rt.pattern]; !ok {
			paths = append(paths, rt.pattern)
		}
		byPath[rt.pattern] = append(byPath[rt.pattern], rt)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rts := byPath[p]
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			for _, rt := range rts {
				if rt.method == r.Method || (rt.method == "GET" && r.Method == "HEAD") {
					if r.Method == http.MethodHead {
						w, r = headOnly(w, r)
					}
					a.serve(w, r, rt)
					return
				}
			}
			var allowed []string
			for _, rt := range rts {
				allowed = append(allowed, rt.method)
			}
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			a.fail(w, nil, problem.E(problem.Method, "%s is not allowed on %s; use %s", r.Method, p, strings.Join(allowed, ", ")))
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The web dashboard has every path outside the API's: its own
		// routes load its page (history fallback).
		if a.ui != nil && !isAPIPath(r.URL.Path) && a.ui.Serves(r.URL.Path) {
			a.ui.ServeHTTP(w, r)
			return
		}
		a.fail(w, nil, problem.E(problem.NotFound, "no route for %s", r.URL.Path))
	})
}

// isAPIPath reports whether p belongs to the API rather than the dashboard:
// an unknown path there is a problem document, never the dashboard's page.
func isAPIPath(p string) bool {
	for _, pre := range []string{"/api/", "/healthz", "/readyz", "/metrics"} {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// Routes lists every route as "METHOD PATTERN" with its access level, for
// the authorization test and the docs.
func (a *API) Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range a.routes {
		out = append(out, RouteInfo{Method: rt.method, Pattern: rt.pattern, Admin: rt.access == adminOnly, Public: rt.access == public, Self: rt.access == selfOrAdmin, Stream: rt.stream})
	}
	return out
}

// RouteInfo describes a route.
type RouteInfo struct {
	Method, Pattern string
	Admin, Public   bool
	// Self routes are for the user named by {id}, or an admin.
	Self bool
	// Stream routes answer with a stream (text/event-stream) that lasts
	// until the client leaves.
	Stream bool
}
