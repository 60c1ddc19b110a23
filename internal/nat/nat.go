// Package nat renders an app platform node's port forwards as one
// nftables table that Proximity owns ("ip proximity"): each public port of
// the node is forwarded (DNAT) to a container's address and port, and
// every rule carries its app's ID as a comment. The whole table is
// replaced in one nft transaction, so applying the desired set again is
// how the agent reconciles after a restart or a manual flush.
package nat

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Table is the nftables table Proximity owns.
const Table = "proximity"

// Forward is one public port forwarded to a container.
type Forward struct {
	App        string `json:"app"`
	Protocol   string `json:"protocol"` // tcp or udp
	PublicPort int    `json:"public_port"`
	IP         string `json:"ip"`
	Port       int    `json:"port"`
}

// Validate checks a forward before it goes into a rule.
func (f Forward) Validate() error {
	if f.Protocol != "tcp" && f.Protocol != "udp" {
		return fmt.Errorf("forward %s: protocol %q", f.App, f.Protocol)
	}
	if f.PublicPort < 1 || f.PublicPort > 65535 || f.Port < 1 || f.Port > 65535 {
		return fmt.Errorf("forward %s: ports %d -> %d", f.App, f.PublicPort, f.Port)
	}
	if a, err := netip.ParseAddr(f.IP); err != nil || !a.Is4() {
		return fmt.Errorf("forward %s: %q is not an IPv4 address", f.App, f.IP)
	}
	for _, r := range f.App {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("forward: app %q", f.App)
		}
	}
	return nil
}

// Script is the nft program that replaces the table with forwards, in
// one transaction (add, delete, and define the table again).
func Script(forwards []Forward) (string, error) {
	fs := append([]Forward(nil), forwards...)
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Protocol != fs[j].Protocol {
			return fs[i].Protocol < fs[j].Protocol
		}
		return fs[i].PublicPort < fs[j].PublicPort
	})
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", Table, Table, Table)
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	seen := map[string]string{}
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			return "", err
		}
		key := fmt.Sprintf("%s/%d", f.Protocol, f.PublicPort)
		if other, dup := seen[key]; dup {
			return "", fmt.Errorf("public port %s is forwarded for both %s and %s", key, other, f.App)
		}
		seen[key] = f.App
		fmt.Fprintf(&b, "\t\t%s dport %d dnat to %s:%d comment %q\n", f.Protocol, f.PublicPort, f.IP, f.Port, f.App)
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}
