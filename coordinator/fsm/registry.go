package fsm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/problem"
	"github.com/proximity-ve/proximity/internal/validate"
)

// MaxPublicPorts is the most public ports one reservation may take.
const MaxPublicPorts = 32

// ProblemHostnameTaken is the problem type of a reservation (a deploy, a
// clone, an adoption) refused because another holds its hostname. The
// detail names only the hostname; the API adds the holder for admins.
const ProblemHostnameTaken = "hostname-taken"

// Reservation is a held tuple of VMID, ports, hostname and address.
type Reservation struct {
	ID          string    `json:"id"`
	VMID        int       `json:"vmid"`
	Hostname    string    `json:"hostname"`
	Node        string    `json:"node"`
	PublicPorts []int     `json:"public_ports"`
	IP          string    `json:"ip,omitempty"`
	Owner       string    `json:"owner"`
	Index       uint64    `json:"index"`
	Seq         uint64    `json:"seq"`
	CreatedAt   time.Time `json:"created_at"`
	// Standby marks the second reservation of an app being moved: it
	// holds its VMID, ports and address but not its hostname, which the
	// app's own reservation holds (move.go).
	Standby bool `json:"standby,omitempty"`
}

// PoolSettings are the ranges the registry allocates from (inclusive).
type PoolSettings struct {
	VMIDMin int `json:"vmid_min"`
	VMIDMax int `json:"vmid_max"`
	PortMin int `json:"port_min"`
	PortMax int `json:"port_max"`
}

// DefaultPools returns VMIDs 10000–99999 and ports 30000–30999.
func DefaultPools() PoolSettings {
	return PoolSettings{VMIDMin: 10000, VMIDMax: 99999, PortMin: 30000, PortMax: 30999}
}

// Validate checks the ranges against what Proxmox and TCP accept.
func (p PoolSettings) Validate() error {
	// pve-vmid is 100..999999999.
	if err := validate.Range("vmid range", p.VMIDMin, p.VMIDMax, 100, 999_999_999); err != nil {
		return err
	}
	return validate.Range("port range", p.PortMin, p.PortMax, 1024, 65535)
}

// NetworkSettings configure static addressing for containers. An empty
// Subnet means containers use DHCP and reservations cannot ask for an IP.
type NetworkSettings struct {
	Subnet  string   `json:"subnet"`
	Gateway string   `json:"gateway"`
	DNS     []string `json:"dns"`
	Bridge  string   `json:"bridge"`
}

// Validate checks the settings: a masked IPv4 subnet with the gateway
// inside it (not its network or broadcast address), IPv4 DNS servers, a
// bridge name as Linux accepts it.
func (n NetworkSettings) Validate() error {
	if n.Subnet == "" {
		if n.Gateway != "" {
			return problem.E(problem.Invalid, "gateway: set without a subnet")
		}
	} else {
		p, err := validate.Subnet("subnet", n.Subnet)
		if err != nil {
			return err
		}
		gw, err := validate.IPv4("gateway", n.Gateway)
		if err != nil {
			return err
		}
		if !p.Contains(gw) || gw == p.Addr() || gw == broadcast(p) {
			return problem.E(problem.Invalid, "gateway: %s is not a host address in %s", gw, p)
		}
	}
	if len(n.DNS) > 3 {
		return problem.E(problem.Invalid, "dns: at most 3 servers")
	}
	for i, d := range n.DNS {
		if _, err := validate.IPv4("dns["+itoa(i)+"]", d); err != nil {
			return err
		}
	}
	if n.Bridge != "" && !bridgeOK(n.Bridge) {
		return problem.E(problem.Invalid, "bridge: %q is not a Linux interface name", n.Bridge)
	}
	return nil
}

func bridgeOK(s string) bool {
	if len(s) > 15 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	return u32addr(v)
}

func u32addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func (s *State) index(id string, r *Reservation) {
	if !r.Standby {
		s.byHostname[r.Hostname] = id
	}
	s.byVMID[r.VMID] = id
	ports := s.byPort[r.Node]
	if ports == nil {
		ports = map[int]string{}
		s.byPort[r.Node] = ports
	}
	for _, p := range r.PublicPorts {
		ports[p] = id
	}
	if r.IP != "" {
		if a, err := netip.ParseAddr(r.IP); err == nil {
			s.byIP[addrU32(a)] = id
		}
	}
}

func (s *State) unindex(r *Reservation) {
	if s.byHostname[r.Hostname] == r.ID {
		delete(s.byHostname, r.Hostname)
	}
	delete(s.byVMID, r.VMID)
	for _, p := range r.PublicPorts {
		delete(s.byPort[r.Node], p)
	}
	if len(s.byPort[r.Node]) == 0 {
		delete(s.byPort, r.Node)
	}
	if r.IP != "" {
		if a, err := netip.ParseAddr(r.IP); err == nil {
			delete(s.byIP, addrU32(a))
		}
	}
}

// reserve takes the whole tuple or nothing: every pool is searched first,
// and state changes only once all of them have a free entry.
func (s *State) reserve(index uint64, c *ReserveCmd) (*Reservation, error) {
	host, err := validate.Hostname("hostname", c.Hostname)
	if err != nil {
		return nil, err
	}
	if err := validate.NodeName("node", c.Node); err != nil {
		return nil, err
	}
	if c.PublicPorts < 0 || c.PublicPorts > MaxPublicPorts {
		return nil, problem.E(problem.Invalid, "public_ports: %d outside 0-%d", c.PublicPorts, MaxPublicPorts)
	}
	if err := validate.Label("owner", c.Owner); err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, problem.E(problem.Invalid, "id: required")
	}
	if _, ok := s.Reservations[c.ID]; ok {
		return nil, problem.E(problem.Conflict, "reservation %s already exists", c.ID)
	}
	// A refusal does not name the holder: users deploy too, and another
	// owner's reservation is none of theirs (the API adds it for admins).
	if _, ok := s.byHostname[host]; ok && !c.standby {
		return nil, &problem.Error{Kind: problem.Conflict, Type: ProblemHostnameTaken, Detail: fmt.Sprintf("hostname %q is taken", host)}
	}

	vmid, ok := c.FixedVMID, true
	if vmid != 0 {
		if vmid < 100 || vmid > 999_999_999 {
			return nil, problem.E(problem.Invalid, "vmid: %d is not a Proxmox VMID", vmid)
		}
		if _, held := s.byVMID[vmid]; held {
			return nil, problem.E(problem.Conflict, "VMID %d is taken", vmid)
		}
	} else if vmid, ok = s.freeVMID(); !ok {
		return nil, problem.E(problem.Exhausted, "no free VMID in %d-%d", s.Pools.VMIDMin, s.Pools.VMIDMax)
	}
	ports, ok := s.freePorts(c.Node, c.PublicPorts)
	if !ok {
		return nil, problem.E(problem.Exhausted, "node %s has fewer than %d free ports in %d-%d",
			c.Node, c.PublicPorts, s.Pools.PortMin, s.Pools.PortMax)
	}
	var ip netip.Addr
	if c.IP {
		if s.Network.Subnet == "" {
			return nil, problem.E(problem.Invalid, "ip: requested, but no subnet is configured (PUT /api/v1/settings/network)")
		}
		if ip, ok = s.freeIP(); !ok {
			return nil, problem.E(problem.Exhausted, "no free address in %s", s.Network.Subnet)
		}
	}

	// Commit: everything is free.
	s.Seq++
	r := &Reservation{
		ID: c.ID, VMID: vmid, Hostname: host, Node: c.Node, PublicPorts: ports,
		Owner: c.Owner, Index: index, Seq: s.Seq, CreatedAt: c.CreatedAt.UTC(), Standby: c.standby,
	}
	if ip.IsValid() {
		r.IP = ip.String()
		s.IPCursor = addrU32(ip)
	}
	if c.FixedVMID == 0 {
		s.VMIDCursor = vmid
	} else if s.foreign[vmid] {
		_ = s.markForeign([]int{vmid}, false) // adopted: Proximity's now
	}
	if len(ports) > 0 {
		s.PortCursor[c.Node] = ports[len(ports)-1]
	}
	s.Reservations[r.ID] = r
	s.index(r.ID, r)
	cp := *r
	cp.PublicPorts = append([]int(nil), ports...)
	return &cp, nil
}

// freeVMID searches the VMID range from just after the cursor, wrapping
// once, for an ID that is neither reserved nor foreign.
func (s *State) freeVMID() (int, bool) {
	lo, hi := s.Pools.VMIDMin, s.Pools.VMIDMax
	n := hi - lo + 1
	start := s.VMIDCursor + 1
	if start < lo || start > hi {
		start = lo
	}
	for i := 0; i < n; i++ {
		v := start + i
		if v > hi {
			v -= n
		}
		if _, used := s.byVMID[v]; !used && !s.foreign[v] {
			return v, true
		}
	}
	return 0, false
}

// freePorts finds count free ports on node, searching from the node's
// cursor and wrapping once. The result is sorted.
func (s *State) freePorts(node string, count int) ([]int, bool) {
	if count == 0 {
		return []int{}, true
	}
	lo, hi := s.Pools.PortMin, s.Pools.PortMax
	n := hi - lo + 1
	start := s.PortCursor[node] + 1
	if start < lo || start > hi {
		start = lo
	}
	used := s.byPort[node]
	var out []int
	for i := 0; i < n && len(out) < count; i++ {
		p := start + i
		if p > hi {
			p -= n
		}
		if _, taken := used[p]; !taken {
			out = append(out, p)
		}
	}
	if len(out) < count {
		return nil, false
	}
	sort.Ints(out)
	return out, true
}

// freeIP finds a free host address in the subnet that is not the gateway.
func (s *State) freeIP() (netip.Addr, bool) {
	p, err := netip.ParsePrefix(s.Network.Subnet)
	if err != nil {
		return netip.Addr{}, false
	}
	gw, _ := netip.ParseAddr(s.Network.Gateway)
	first := addrU32(p.Addr()) + 1
	last := addrU32(broadcast(p)) - 1
	n := last - first + 1
	start := s.IPCursor + 1
	if start < first || start > last {
		start = first
	}
	for i := uint32(0); i < n; i++ {
		v := start + i
		if v > last {
			v -= n
		}
		if _, used := s.byIP[v]; used || u32addr(v) == gw {
			continue
		}
		return u32addr(v), true
	}
	return netip.Addr{}, false
}

// releaseCmd is the release a caller asks for (CmdRelease): a
// reservation that an app holds is the app's, freed only by the app's own
// lifecycle (its deletion, or a deploy that failed for good), so releasing
// it is refused with a Conflict that names the app. Otherwise its hostname
// and ports would be handed out again under a running app.
func (s *State) releaseCmd(id string) error {
	if a := s.appHolding(id); a != nil {
		return problem.E(problem.Conflict, "reservation %s belongs to app %s (%s); delete the app to free it", id, a.Hostname, a.ID)
	}
	return s.release(id)
}

// appHolding returns the app whose reservation id is, or nil. An app's
// reservation is owned by "app:<id>"; the app record names it too.
func (s *State) appHolding(id string) *App {
	r, ok := s.Reservations[id]
	if !ok {
		return nil
	}
	if appID, ok := strings.CutPrefix(r.Owner, AppOwnerPrefix); ok {
		if a, ok := s.Apps[appID]; ok && (a.ReservationID == id || (a.Op == OpMove && a.OpArgs[ArgMoveReservation] == id)) {
			return a
		}
	}
	return nil
}

// AppOwnerPrefix begins the owner of a reservation that an app holds:
// "app:<app id>".
const AppOwnerPrefix = "app:"

// AppHolding returns the app that holds reservation id, if one does.
func (s *State) AppHolding(id string) (App, bool) {
	if a := s.appHolding(id); a != nil {
		return *a, true
	}
	return App{}, false
}

func (s *State) release(id string) error {
	r, ok := s.Reservations[id]
	if !ok {
		return problem.E(problem.NotFound, "reservation %s not found", id)
	}
	s.unindex(r)
	delete(s.Reservations, id)
	return nil
}

func (s *State) markForeign(vmids []int, on bool) error {
	for _, v := range vmids {
		if v < 100 || v > 999_999_999 {
			return problem.E(problem.Invalid, "vmid: %d is not a Proxmox VMID", v)
		}
	}
	for _, v := range vmids {
		if on {
			s.foreign[v] = true
		} else {
			delete(s.foreign, v)
		}
	}
	s.Foreign = s.Foreign[:0]
	for v := range s.foreign {
		s.Foreign = append(s.Foreign, v)
	}
	sort.Ints(s.Foreign)
	return nil
}

func (s *State) setPools(p PoolSettings) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s.Pools = p
	return nil
}

func (s *State) setNetwork(n NetworkSettings) error {
	if err := n.Validate(); err != nil {
		return err
	}
	// Addresses already handed out must stay valid.
	var p netip.Prefix
	if n.Subnet != "" {
		p = netip.MustParsePrefix(n.Subnet)
	}
	gw, _ := netip.ParseAddr(n.Gateway)
	for ipv, id := range s.byIP {
		a := u32addr(ipv)
		if !p.IsValid() || !p.Contains(a) || a == gw {
			return problem.E(problem.Conflict, "reservation %s holds %s, which the new settings would not allow", id, a)
		}
	}
	n.DNS = append([]string{}, n.DNS...)
	s.Network = n
	return nil
}

// Reservation returns a copy of reservation id.
func (s *State) Reservation(id string) (Reservation, bool) {
	r, ok := s.Reservations[id]
	if !ok {
		return Reservation{}, false
	}
	cp := *r
	cp.PublicPorts = append([]int(nil), r.PublicPorts...)
	return cp, true
}

// ReservationByHostname returns the reservation holding a hostname
// (compared in lower case).
func (s *State) ReservationByHostname(host string) (Reservation, bool) {
	id, ok := s.byHostname[host]
	if !ok {
		return Reservation{}, false
	}
	return s.Reservation(id)
}

// ListReservations returns one page of reservations in creation order and
// the total count.
func (s *State) ListReservations(page, perPage int) ([]Reservation, int) {
	all := make([]*Reservation, 0, len(s.Reservations))
	for _, r := range s.Reservations {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	out := []Reservation{}
	for _, x := range validate.PageOf(all, page, perPage) {
		r, _ := s.Reservation(x.ID)
		out = append(out, r)
	}
	return out, len(all)
}

// IsForeign reports whether a VMID is marked foreign.
func (s *State) IsForeign(vmid int) bool { return s.foreign[vmid] }
