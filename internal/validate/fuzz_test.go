package validate

import (
	"math/big"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/problem"
)

// rfc1123 is an independent statement of the host name rule: dot-separated
// labels of 1-63 letters, digits and inner hyphens.
var (
	rfc1123    = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	allNumeric = regexp.MustCompile(`^[0-9.]*$`)
	printable  = regexp.MustCompile(`^[!-~]{1,128}$`)
)

// invalidNaming fails t unless err is a problem.Invalid whose text names
// field.
func invalidNaming(t *testing.T, err error, field, in string) {
	t.Helper()
	if !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), field) {
		t.Fatalf("%q: error %v is not an Invalid problem naming %s", in, err, field)
	}
}

// FuzzHostname: Hostname accepts exactly the RFC 1123 names of at most 253
// characters that are not all numeric (an independent regular
// expression), answers them in lower case, and accepts its own answer
// unchanged; NodeName accepts a single label only; HostAddress accepts
// every host name Hostname accepts and every IP address without a zone.
func FuzzHostname(f *testing.F) {
	for _, s := range []string{"web", "Web-1", "a.b.c", "1x", "123", "1.2.3.4", "a..b", "-a", "a-", "é",
		"my-app.example.org", strings.Repeat("a", 63), strings.Repeat("a", 64), "fe80::1%eth0", "::1", "a_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Hostname("hostname", s)
		want := s != "" && len(s) <= 253 && rfc1123.MatchString(s) && !allNumeric.MatchString(s)
		if (err == nil) != want {
			t.Fatalf("Hostname(%q) = %q, %v; the RFC 1123 rule says accepted=%v", s, h, err, want)
		}
		if err != nil {
			if h != "" {
				t.Fatalf("Hostname(%q) answered %q with the error %v", s, h, err)
			}
			invalidNaming(t, err, "hostname", s)
		} else {
			if h != strings.ToLower(s) {
				t.Fatalf("Hostname(%q) = %q, not its lower case", s, h)
			}
			if again, err := Hostname("hostname", h); err != nil || again != h {
				t.Fatalf("Hostname(Hostname(%q)) = %q, %v; not idempotent", s, again, err)
			}
			if err := HostAddress("host", s); err != nil {
				t.Fatalf("HostAddress refuses the host name %q: %v", s, err)
			}
		}
		nodeOK := NodeName("node", s) == nil
		if nodeOK != (s != "" && len(s) <= 63 && !strings.Contains(s, ".") && rfc1123.MatchString(s)) {
			t.Fatalf("NodeName(%q) accepted=%v, against the single-label rule", s, nodeOK)
		}
		if err := HostAddress("host", s); err == nil {
			ip := net.ParseIP(s)
			if ip == nil && !want {
				t.Fatalf("HostAddress(%q) accepted neither an IP address nor a host name", s)
			}
		} else {
			invalidNaming(t, err, "host", s)
		}
	})
}

// FuzzSubnet: an accepted subnet is IPv4, /8 to /30, has no host bits,
// is written in its canonical form, agrees with net.ParseCIDR and is
// accepted again unchanged; an accepted IPv4 address is canonical and
// IPv4 for the net package too.
func FuzzSubnet(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "10.0.0.1/24", "10.0.0.0/8", "10.0.0.0/7", "10.0.0.0/30", "10.0.0.0/31",
		"fd00::/64", "::ffff:10.0.0.0/104", "300.0.0.0/24", "010.0.0.0/24", "10.0.0.0/024", "192.168.1.1", "1.2.3.4%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Subnet("subnet", s)
		if err != nil {
			if p.IsValid() {
				t.Fatalf("Subnet(%q) answered %s with the error %v", s, p, err)
			}
			invalidNaming(t, err, "subnet", s)
		} else {
			if !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 30 || p.Masked() != p {
				t.Fatalf("Subnet(%q) = %s, outside the rule", s, p)
			}
			if p.String() != s {
				t.Fatalf("Subnet(%q) = %s, not written canonically", s, p)
			}
			ip, n, err := net.ParseCIDR(s)
			if err != nil || ip.To4() == nil || !ip.Equal(n.IP) {
				t.Fatalf("net.ParseCIDR(%q) = %v %v %v, disagrees", s, ip, n, err)
			}
			if ones, _ := n.Mask.Size(); ones != p.Bits() {
				t.Fatalf("net.ParseCIDR(%q) has /%d, Subnet /%d", s, ones, p.Bits())
			}
			if again, err := Subnet("subnet", p.String()); err != nil || again != p {
				t.Fatalf("Subnet(%s) = %s, %v; not idempotent", p, again, err)
			}
		}
		a, err := IPv4("ip", s)
		if err != nil {
			if a.IsValid() {
				t.Fatalf("IPv4(%q) answered %s with the error %v", s, a, err)
			}
			invalidNaming(t, err, "ip", s)
			return
		}
		if !a.Is4() || a.String() != s || net.ParseIP(s).To4() == nil {
			t.Fatalf("IPv4(%q) = %s, not a canonical IPv4 address", s, a)
		}
	})
}

// FuzzLabel: Label accepts exactly 1-128 printable ASCII characters
// without spaces; Port exactly 1-65535; Range exactly min <= lo <= hi <=
// max.
func FuzzLabel(f *testing.F) {
	f.Add("alice", 80, 1, 2, 0, 10)
	f.Add("a b", 0, 3, 2, 0, 10)
	f.Add(strings.Repeat("x", 129), 65536, -1, 0, 0, 0)
	f.Add("é", 65535, 5, 5, 5, 5)
	f.Fuzz(func(t *testing.T, s string, port, lo, hi, lmin, lmax int) {
		if err := Label("owner", s); (err == nil) != printable.MatchString(s) {
			t.Fatalf("Label(%q) = %v, against the printable ASCII rule", s, err)
		} else if err != nil {
			invalidNaming(t, err, "owner", s)
		}
		if err := RequestID("request_id", s); (err == nil) != printable.MatchString(s) {
			t.Fatalf("RequestID(%q) = %v", s, err)
		}
		if err := Port("port", port); (err == nil) != (port >= 1 && port <= 65535) {
			t.Fatalf("Port(%d) = %v", port, err)
		} else if err != nil {
			invalidNaming(t, err, "port", strconv.Itoa(port))
		}
		if err := Range("range", lo, hi, lmin, lmax); (err == nil) != (lmin <= lo && lo <= hi && hi <= lmax) {
			t.Fatalf("Range(%d, %d, %d, %d) = %v", lo, hi, lmin, lmax, err)
		}
	})
}

// FuzzPagination: accepted page and per_page are in range and are the
// canonical reading of what was given (parsing their decimal form again
// gives them back); a refusal answers zeros. PageBounds is a window of
// at most perPage items inside [0, n], starting at (page-1)*perPage
// (computed without overflow here) when that is inside the list, and
// consecutive pages tile the list.
func FuzzPagination(f *testing.F) {
	f.Add("", "", 1, 20, 45)
	f.Add("2", "20", 2, 20, 45)
	f.Add("0", "101", 0, 0, 0)
	f.Add("+3", "007", 3, 7, 20)
	f.Add("9223372036854775807", "100", int(^uint(0)>>1), 100, 1000)
	f.Add("-1", "x", -5, -5, -5)
	f.Fuzz(func(t *testing.T, pageStr, perStr string, page, perPage, n int) {
		pg, per, err := Pagination(pageStr, perStr)
		if err != nil {
			if pg != 0 || per != 0 {
				t.Fatalf("Pagination(%q, %q) = %d, %d with the error %v", pageStr, perStr, pg, per, err)
			}
			if !problem.Is(err, problem.Invalid) {
				t.Fatalf("Pagination(%q, %q): %v is not Invalid", pageStr, perStr, err)
			}
		} else {
			if pg < 1 || per < 1 || per > 100 {
				t.Fatalf("Pagination(%q, %q) = %d, %d, out of range", pageStr, perStr, pg, per)
			}
			if pageStr == "" && pg != 1 || perStr == "" && per != 20 {
				t.Fatalf("Pagination(%q, %q) = %d, %d; the defaults are 1 and 20", pageStr, perStr, pg, per)
			}
			if p2, q2, err := Pagination(strconv.Itoa(pg), strconv.Itoa(per)); err != nil || p2 != pg || q2 != per {
				t.Fatalf("Pagination of its own answer %d, %d = %d, %d, %v", pg, per, p2, q2, err)
			}
		}
		from, to := PageBounds(page, perPage, n)
		if n <= 0 || page < 1 || perPage < 1 {
			if from != 0 || to != 0 {
				t.Fatalf("PageBounds(%d, %d, %d) = [%d, %d), want empty at 0", page, perPage, n, from, to)
			}
			return
		}
		if from < 0 || from > to || to > n || to-from > perPage {
			t.Fatalf("PageBounds(%d, %d, %d) = [%d, %d), not a window of the list", page, perPage, n, from, to)
		}
		start := new(big.Int).Mul(big.NewInt(int64(page-1)), big.NewInt(int64(perPage)))
		if start.Cmp(big.NewInt(int64(n))) < 0 {
			if int64(from) != start.Int64() || to-from != min(perPage, n-from) {
				t.Fatalf("PageBounds(%d, %d, %d) = [%d, %d), want it to start at %s", page, perPage, n, from, to, start)
			}
			if page < int(^uint(0)>>1) {
				if nf, _ := PageBounds(page+1, perPage, n); nf != to {
					t.Fatalf("page %d ends at %d but page %d starts at %d", page, to, page+1, nf)
				}
			}
		} else if from != n || to != n {
			t.Fatalf("PageBounds(%d, %d, %d) = [%d, %d), want the empty end [%d, %d)", page, perPage, n, from, to, n, n)
		}
		all := make([]int, min(n, 1000))
		got := PageOf(all, page, perPage)
		if got == nil {
			t.Fatal("PageOf answered nil")
		}
		if f2, t2 := PageBounds(page, perPage, len(all)); len(got) != t2-f2 || cap(got) != len(got) {
			t.Fatalf("PageOf has %d items (cap %d), PageBounds [%d, %d)", len(got), cap(got), f2, t2)
		}
	})
}
