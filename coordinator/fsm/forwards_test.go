package fsm

import (
	"testing"
	"time"

	"github.com/proximity-ve/proximity/internal/catalog"
)

// TestForwardTargetComesFromTheRegistry: a port forward targets the
// address the registry holds for the app, never what the container says
// about itself later. With a subnet, that is the static IPAM address,
// whatever the container reports; without one, it is the address the
// deploy observed, and a later report cannot move it.
func TestForwardTargetComesFromTheRegistry(t *testing.T) {
	setup := func(subnet string) *FSM {
		f := New(0)
		cmds := []Command{
			{Type: CmdSetCatalog, RequestID: "cat", SetCatalog: &CatalogState{Entries: []catalog.Entry{{
				ID: "web", Name: "Web", Version: "1", Ports: []catalog.Port{{Name: "http", Internal: 8080, Protocol: "tcp"}}}}}},
			{Type: CmdJoinToken, RequestID: "t", JoinToken: &JoinToken{ID: "jt", Hash: hash64('a'), ExpiresAt: t0.Add(time.Hour)}},
			{Type: CmdJoinNode, RequestID: "j", JoinNode: &JoinNodeCmd{TokenHash: hash64('a'), Node: "pve1", At: t0}},
		}
		if subnet != "" {
			cmds = append(cmds, Command{Type: CmdSetNetwork, RequestID: "n", SetNetwork: &NetworkSettings{Subnet: subnet, Gateway: "10.20.0.1"}})
		}
		for _, c := range cmds {
			mustOK(t, apply(t, f, c)[0])
		}
		mustOK(t, apply(t, f, Command{Type: CmdCreateApp, RequestID: "app", CreateApp: &CreateAppCmd{
			App:     App{ID: "app1", Owner: "alice", CatalogID: "web", CreatedAt: t0},
			Reserve: ReserveCmd{ID: "res1", Hostname: "web1", Node: "pve1", PublicPorts: 1, IP: subnet != "", Owner: "app:app1", CreatedAt: t0},
		}})[0])
		return f
	}
	// step moves the deploy on by one stage, carrying the address the
	// container reported (the controller does so after the network stage).
	step := func(f *FSM, from, to, reported string) {
		t.Helper()
		mustOK(t, apply(t, f, Command{Type: CmdAppStep, RequestID: "step-" + to, AppStep: &AppStepCmd{
			ID: "app1", ExpectOp: OpDeploy, ExpectStep: from, Step: to, Attempt: 1, ContainerIP: reported, At: t0}})[0])
	}
	target := func(f *FSM) string {
		t.Helper()
		var rules []ForwardRule
		f.Read(func(s *State) { rules = s.NodeForwards("pve1") })
		if len(rules) != 1 {
			t.Fatalf("forwards: %+v", rules)
		}
		return rules[0].IP
	}

	// Static IPAM: the container claims another address; the forward
	// keeps to the registry's.
	f := setup("10.20.0.0/24")
	var static string
	f.Read(func(s *State) { a := s.Apps["app1"]; static = a.IP })
	if static == "" {
		t.Fatal("no static address")
	}
	step(f, "", "docker", "10.20.0.200")
	if got := target(f); got != static {
		t.Fatalf("forward to %s, the container's claim; the registry holds %s", got, static)
	}

	// DHCP: the deploy's observation stands; a later report cannot move it.
	f = setup("")
	step(f, "", "docker", "192.0.2.10")
	if got := target(f); got != "192.0.2.10" {
		t.Fatalf("forward to %q, want the observed 192.0.2.10", got)
	}
	step(f, "docker", "compose", "192.0.2.66")
	if got := target(f); got != "192.0.2.10" {
		t.Fatalf("a later report moved the forward to %s", got)
	}
}
