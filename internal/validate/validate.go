// Package validate holds the input rules shared by the coordinator and the
// agent: hostnames, Proxmox node names, ports, pagination. Each function
// returns a problem.Invalid error whose detail names the field.
package validate

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/internal/problem"
)

// label reports whether s is an RFC 1123 label: 1–63 letters, digits and
// inner hyphens. It runs on every reservation, so it is written out rather
// than a regular expression.
func label(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Hostname checks an RFC 1123 host name (dot-separated labels of 1–63
// letters, digits and inner hyphens; at most 253 characters; not all
// numeric) and returns it in lower case, the form uniqueness is judged on.
func Hostname(field, s string) (string, error) {
	if s == "" {
		return "", problem.E(problem.Invalid, "%s: required", field)
	}
	h := strings.ToLower(s)
	if len(h) > 253 {
		return "", problem.E(problem.Invalid, "%s: longer than 253 characters", field)
	}
	numeric := true
	for _, l := range strings.Split(h, ".") {
		if !label(l) {
			return "", problem.E(problem.Invalid,
				"%s: %q is not an RFC 1123 host name (labels of 1-63 letters, digits and inner hyphens)", field, s)
		}
		numeric = numeric && allDigits(l)
	}
	if numeric {
		return "", problem.E(problem.Invalid, "%s: %q is all numeric", field, s)
	}
	return h, nil
}

// HostAddress checks an address a host is reached at: an IP address or a
// DNS name (RFC 1123), without a port.
func HostAddress(field, s string) error {
	if _, err := netip.ParseAddr(s); err == nil && !strings.Contains(s, "%") {
		return nil
	}
	if _, err := Hostname(field, s); err != nil {
		return problem.E(problem.Invalid, "%s: %q is not an IP address or a DNS name", field, s)
	}
	return nil
}

// NodeName checks a Proxmox node name (the pve-node format: letters, digits
// and inner hyphens, at most 63 characters).
func NodeName(field, s string) error {
	if s == "" {
		return problem.E(problem.Invalid, "%s: required", field)
	}
	if !label(s) {
		return problem.E(problem.Invalid, "%s: %q is not a valid Proxmox node name", field, s)
	}
	return nil
}

// Port checks a TCP/UDP port number, 1–65535.
func Port(field string, p int) error {
	if p < 1 || p > 65535 {
		return problem.E(problem.Invalid, "%s: %d is not a port (1-65535)", field, p)
	}
	return nil
}

// Range checks an inclusive [lo, hi] range within [min, max].
func Range(field string, lo, hi, min, max int) error {
	if lo < min || hi > max || lo > hi {
		return problem.E(problem.Invalid, "%s: [%d, %d] must satisfy %d <= low <= high <= %d", field, lo, hi, min, max)
	}
	return nil
}

// Label checks a free-form identifier such as an owner or a user name:
// 1–128 printable ASCII characters without spaces.
func Label(field, s string) error {
	if s == "" || len(s) > 128 {
		return problem.E(problem.Invalid, "%s: must be 1-128 characters", field)
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return problem.E(problem.Invalid, "%s: %q has a character outside printable ASCII", field, s)
		}
	}
	return nil
}

// RequestID checks a client request ID: 1–128 printable ASCII characters.
func RequestID(field, s string) error { return Label(field, s) }

// Pagination parses page (>= 1, default 1) and per_page (1–100, default 20).
func Pagination(pageStr, perPageStr string) (page, perPage int, err error) {
	page, perPage = 1, 20
	if pageStr != "" {
		page, err = strconv.Atoi(pageStr)
		if err != nil || page < 1 {
			return 0, 0, problem.E(problem.Invalid, "page: %q must be an integer >= 1", pageStr)
		}
	}
	if perPageStr != "" {
		perPage, err = strconv.Atoi(perPageStr)
		if err != nil || perPage < 1 || perPage > 100 {
			return 0, 0, problem.E(problem.Invalid, "per_page: %q must be an integer from 1 to 100", perPageStr)
		}
	}
	return page, perPage, nil
}

// PageBounds returns the half-open range [from, to) of the items that page
// (counted from 1) of perPage items covers in a list of n items. A page past
// the end is the empty range [n, n); a page or perPage below 1 is empty at
// the start. It cannot overflow, whatever the page number.
func PageBounds(page, perPage, n int) (from, to int) {
	if n <= 0 || page < 1 || perPage < 1 {
		return 0, 0
	}
	// (page-1)*perPage <= n  <=>  page-1 <= n/perPage (integer division),
	// checked without multiplying.
	if page-1 > n/perPage {
		return n, n
	}
	from = (page - 1) * perPage
	to = from + min(perPage, n-from)
	return from, to
}

// PageOf returns page (counted from 1) of perPage items of all, sharing
// all's backing array; a page past the end is empty, never nil.
func PageOf[T any](all []T, page, perPage int) []T {
	from, to := PageBounds(page, perPage, len(all))
	if from == to {
		return []T{}
	}
	return all[from:to:to]
}

// Subnet parses an IPv4 CIDR with room for hosts (prefix /8 to /30) and
// returns it masked. The address part must be the network address.
func Subnet(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, problem.E(problem.Invalid, "%s: %q is not a CIDR prefix", field, s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, problem.E(problem.Invalid, "%s: %q is not IPv4", field, s)
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return netip.Prefix{}, problem.E(problem.Invalid, "%s: prefix length /%d outside /8-/30", field, p.Bits())
	}
	if p.Masked() != p {
		return netip.Prefix{}, problem.E(problem.Invalid, "%s: %q has host bits set; did you mean %s?", field, s, p.Masked())
	}
	return p, nil
}

// IPv4 parses an IPv4 address.
func IPv4(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, problem.E(problem.Invalid, "%s: %q is not an IPv4 address", field, s)
	}
	return a, nil
}
