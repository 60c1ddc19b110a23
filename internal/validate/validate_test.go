package validate

import (
	"strings"
	"testing"

	"github.com/proximity-ve/proximity/internal/problem"
)

func TestHostname(t *testing.T) {
	good := map[string]string{
		"web": "web", "Web-1": "web-1", "a.b.c": "a.b.c", "x1": "x1", "1x": "1x",
		strings.Repeat("a", 63): strings.Repeat("a", 63), "my-app.example.org": "my-app.example.org",
	}
	for in, want := range good {
		got, err := Hostname("hostname", in)
		if err != nil || got != want {
			t.Errorf("Hostname(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-a", "a-", "a_b", "a b", "a..b", ".a", "a.", "123", "1.2.3.4",
		strings.Repeat("a", 64), strings.Repeat("a.", 127) + "ab", "é", "a\x00"} {
		if _, err := Hostname("hostname", in); !problem.Is(err, problem.Invalid) || !strings.Contains(err.Error(), "hostname") {
			t.Errorf("Hostname(%q) = %v, want an Invalid error naming the field", in, err)
		}
	}
}

func TestNodeName(t *testing.T) {
	for _, ok := range []string{"pve", "PVE-01", "n1"} {
		if err := NodeName("node", ok); err != nil {
			t.Errorf("NodeName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "pve 1", "pve.local", "-pve", "pve_1", strings.Repeat("n", 64)} {
		if err := NodeName("node", bad); !problem.Is(err, problem.Invalid) {
			t.Errorf("NodeName(%q) accepted", bad)
		}
	}
}

func TestAuditFinding14PortsValidated(t *testing.T) {
	for _, p := range []int{0, -1, 65536, 100000} {
		if err := Port("port", p); !problem.Is(err, problem.Invalid) {
			t.Errorf("Port(%d) accepted", p)
		}
	}
	for _, p := range []int{1, 80, 65535} {
		if err := Port("port", p); err != nil {
			t.Errorf("Port(%d): %v", p, err)
		}
	}
}

func TestAuditFinding19SubnetValidated(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0", "10.0.0.1/24", "fd00::/64", "10.0.0.0/7", "10.0.0.0/31", "300.0.0.0/24", "10.0.0.0/24/1"} {
		if _, err := Subnet("subnet", bad); !problem.Is(err, problem.Invalid) {
			t.Errorf("Subnet(%q) accepted", bad)
		}
	}
	if p, err := Subnet("subnet", "192.168.10.0/24"); err != nil || p.String() != "192.168.10.0/24" {
		t.Errorf("Subnet: %v %v", p, err)
	}
}

func TestAuditFinding28And29Pagination(t *testing.T) {
	cases := []struct {
		page, per string
		ok        bool
		p, n      int
	}{
		{"", "", true, 1, 20}, {"3", "100", true, 3, 100}, {"0", "", false, 0, 0}, {"-1", "", false, 0, 0},
		{"", "0", false, 0, 0}, {"", "101", false, 0, 0}, {"a", "", false, 0, 0}, {"", "1.5", false, 0, 0},
	}
	for _, c := range cases {
		p, n, err := Pagination(c.page, c.per)
		if c.ok != (err == nil) || (c.ok && (p != c.p || n != c.n)) {
			t.Errorf("Pagination(%q, %q) = %d, %d, %v", c.page, c.per, p, n, err)
		}
	}
}

func TestLabel(t *testing.T) {
	for _, bad := range []string{"", strings.Repeat("x", 129), "a b", "tab\t", "ünï"} {
		if err := Label("owner", bad); err == nil {
			t.Errorf("Label(%q) accepted", bad)
		}
	}
}

func TestHugePageIsEmptyNotPanic(t *testing.T) {
	const maxInt = int(^uint(0) >> 1)
	cases := []struct {
		page, per, n int
		from, to     int
	}{
		{1, 20, 0, 0, 0},
		{1, 20, 5, 0, 5},
		{2, 2, 5, 2, 4},
		{3, 2, 5, 4, 5},
		{4, 2, 5, 5, 5},
		{maxInt, 100, 250, 250, 250},
		{maxInt, 1, maxInt, maxInt - 1, maxInt},
		{maxInt/100 + 2, 100, maxInt, maxInt, maxInt},
		{0, 20, 5, 0, 0},
		{-5, 20, 5, 0, 0},
		{1, 0, 5, 0, 0},
	}
	for _, c := range cases {
		from, to := PageBounds(c.page, c.per, c.n)
		if from != c.from || to != c.to {
			t.Errorf("PageBounds(%d, %d, %d) = [%d, %d), want [%d, %d)", c.page, c.per, c.n, from, to, c.from, c.to)
		}
	}
	all := []int{1, 2, 3}
	if got := PageOf(all, maxInt, 100); got == nil || len(got) != 0 {
		t.Errorf("PageOf past the end = %#v, want an empty non-nil slice", got)
	}
	if got := PageOf(all, 2, 2); len(got) != 1 || got[0] != 3 {
		t.Errorf("PageOf(all, 2, 2) = %v, want [3]", got)
	}
	// Huge numbers that are not ints are refused, not wrapped.
	for _, s := range []string{"9223372036854775808", "1e309", "99999999999999999999999"} {
		if _, _, err := Pagination(s, ""); err == nil {
			t.Errorf("Pagination(%q) accepted", s)
		}
	}
	if p, _, err := Pagination("9223372036854775807", "100"); err != nil || p != maxInt {
		t.Errorf("Pagination(maxint) = %d, %v", p, err)
	}
}
