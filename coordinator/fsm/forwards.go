// The port forwards each node should have, from its apps.

package fsm

import (
	"sort"
	"strings"
)

// NodeForwards is the set of port forwards node should have: every public
// port of every app on it whose container address is known, except apps
// being deleted or cleaned up after a failed or cancelled deploy, as
// "app, protocol, public port, address, port". The address is the registry's: the static one when IPAM gave the app one,
// otherwise the one its deploy observed, never a later claim of the
// container's.
func (s *State) NodeForwards(node string) []ForwardRule {
	var out []ForwardRule
	for _, a := range s.Apps {
		if to, ip, ports, ok := s.movingTo(a); ok && to == node {
			// A move's new container, before the switch (move.go).
			out = s.appForwards(out, a, ip, ports)
		}
		// A move being undone leaves its app where it was.
		undoing := strings.HasPrefix(a.Step, StepCleanup) && a.Op != OpMove
		if a.Node != node || a.ReservationID == "" || a.Op == OpDelete || undoing {
			continue
		}
		ip := a.IP
		if ip == "" {
			ip = a.ContainerIP
		}
		out = s.appForwards(out, a, ip, a.PublicPorts)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].PublicPort < out[j].PublicPort || (out[i].PublicPort == out[j].PublicPort && out[i].Protocol < out[j].Protocol)
	})
	return out
}

// appForwards appends the forwards of app a's public ports to the
// container at ip (none while ip is unknown).
func (s *State) appForwards(out []ForwardRule, a *App, ip string, ports []int) []ForwardRule {
	if ip == "" {
		return out
	}
	if a.Adopted {
		if len(ports) > 0 && a.InternalPort > 0 {
			out = append(out, ForwardRule{a.ID, "tcp", ports[0], ip, a.InternalPort})
		}
		return out
	}
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok {
		return out
	}
	for i, p := range e.Ports {
		if i < len(ports) {
			out = append(out, ForwardRule{a.ID, p.Protocol, ports[i], ip, p.Internal})
		}
	}
	return out
}

// ForwardRule is one forward of NodeForwards.
type ForwardRule struct {
	App        string
	Protocol   string
	PublicPort int
	IP         string
	Port       int
}
