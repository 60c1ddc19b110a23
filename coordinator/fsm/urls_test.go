package fsm

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// TestAppURLsFromNodeAddressAndCatalogPorts: an app's URLs are its node's
// address with the public port of each catalog port that has a scheme
// (https when the entry says so, http for an HTTP port, none for others),
// the health check's port being the main one; none until the node's
// address is known; the address is validated and follows the agent.
func TestAppURLsFromNodeAddressAndCatalogPorts(t *testing.T) {
	f := New(0)
	entry := catalog.Entry{ID: "web", Name: "Web", Version: "1", Ports: []catalog.Port{
		{Name: "ui", Internal: 80, Protocol: "tcp", HTTP: true},
		{Name: "dns", Internal: 53, Protocol: "udp"},
		{Name: "api", Internal: 8443, Protocol: "tcp", Scheme: "https"},
	}, HealthCheck: catalog.HealthCheck{Port: "api", Path: "/"}}
	for _, c := range []Command{
		{Type: CmdSetCatalog, RequestID: "cat", SetCatalog: &CatalogState{Entries: []catalog.Entry{entry}}},
		{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
		{Type: CmdJoinNode, RequestID: "j", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}},
		{Type: CmdCreateUser, RequestID: "alice", CreateUser: &CreateUserCmd{User: User{ID: "alice", Name: "alice", Role: RoleUser}}},
	} {
		mustOK(t, apply(t, f, c)[0])
	}
	app := mustOK(t, apply(t, f, Command{Type: CmdCreateApp, RequestID: "a1", CreateApp: &CreateAppCmd{
		App:     App{ID: "app1", Owner: "alice", CatalogID: "web", CreatedAt: t0},
		Reserve: ReserveCmd{ID: "res1", Hostname: "web", Node: "pve1", PublicPorts: 3, Owner: "app:app1", CreatedAt: t0},
	}})[0]).App
	urls := func() (out []AppURL) {
		f.Read(func(s *State) { a, _ := s.App(app.ID); out = s.AppURLs(a) })
		return
	}
	if got := urls(); len(got) != 0 {
		t.Fatalf("URLs before the node's address is known: %v", got)
	}
	setAddr := func(rid, addr string) Result {
		return apply(t, f, Command{Type: CmdSetNodeAddress, RequestID: rid, SetNodeAddress: &SetNodeAddressCmd{Node: "pve1", Address: addr}})[0]
	}
	for _, bad := range []string{"", "10.0.0.5:8080", "http://x", "a b", "fe80::1%eth0"} {
		mustKind(t, setAddr("bad-"+bad, bad), problem.Invalid)
	}
	mustOK(t, setAddr("addr", "192.0.2.10"))
	want := []AppURL{
		{Name: "ui", URL: "http://192.0.2.10:30000"},
		{Name: "api", URL: "https://192.0.2.10:30002", Main: true},
	}
	if d := cmp.Diff(want, urls()); d != "" {
		t.Fatalf("URLs (-want +got):\n%s", d)
	}
	mustOK(t, setAddr("addr6", "2001:db8::7"))
	if got := urls(); got[0].URL != "http://[2001:db8::7]:30000" {
		t.Fatalf("URLs on an IPv6 address: %v", got)
	}
	mustOK(t, setAddr("name", "pve1.example.net"))
	if got := urls(); got[1].URL != "https://pve1.example.net:30002" || !got[1].Main {
		t.Fatalf("URLs on a DNS name: %v", got)
	}
}
