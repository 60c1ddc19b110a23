package nat

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

var forwards = []Forward{
	{App: "app_b", Protocol: "udp", PublicPort: 30001, IP: "10.0.3.6", Port: 53},
	{App: "app_a", Protocol: "tcp", PublicPort: 30000, IP: "10.0.3.5", Port: 80},
}

func TestScriptIsOrderedAndValidated(t *testing.T) {
	s, err := Script(forwards)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(s, "tcp dport 30000 dnat to 10.0.3.5:80 comment \"app_a\""), strings.Index(s, "udp dport 30001"); i < 0 || j < i {
		t.Fatalf("script:\n%s", s)
	}
	for _, bad := range []Forward{
		{App: "a", Protocol: "sctp", PublicPort: 1, IP: "10.0.0.1", Port: 1},
		{App: "a", Protocol: "tcp", PublicPort: 0, IP: "10.0.0.1", Port: 1},
		{App: "a", Protocol: "tcp", PublicPort: 1, IP: "::1", Port: 1},
		{App: `a" ; drop`, Protocol: "tcp", PublicPort: 1, IP: "10.0.0.1", Port: 1},
	} {
		if _, err := Script([]Forward{bad}); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := Script(append(forwards, Forward{App: "app_c", Protocol: "tcp", PublicPort: 30000, IP: "10.0.3.7", Port: 80})); err == nil {
		t.Error("two forwards of one public port")
	}
}

// TestRulesInANetworkNamespace applies the real rules with nft inside a
// network namespace made for the test: the table holds them, a second
// apply replaces rather than adds, and after a flush an apply heals it.
func TestRulesInANetworkNamespace(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nft is missing: .ci/run installs nftables")
		}
		t.Skip("nft is not installed (the CI installs nftables)")
	}
	ns := fmt.Sprintf("pxnat%d", rand.IntN(1_000_000))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs as root and must be able to make a network namespace: %v %s", err, out)
		}
		t.Skipf("no network namespaces here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	nft := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("nft %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	apply := func(fs []Forward) {
		s, err := Script(fs)
		if err != nil {
			t.Fatal(err)
		}
		nft(s, "-f", "-")
	}
	apply(forwards)
	apply(forwards)
	list := nft("", "list", "table", "ip", Table)
	if strings.Count(list, "dnat to") != 2 || !strings.Contains(list, `tcp dport 30000 dnat to 10.0.3.5:80 comment "app_a"`) {
		t.Fatalf("table after two applies:\n%s", list)
	}
	nft("", "flush", "ruleset")
	apply(forwards[:1])
	if list = nft("", "list", "table", "ip", Table); strings.Count(list, "dnat to") != 1 || !strings.Contains(list, "app_b") {
		t.Fatalf("table after flush and apply:\n%s", list)
	}
	apply(nil)
	if list = nft("", "list", "table", "ip", Table); strings.Contains(list, "dnat") {
		t.Fatalf("empty set left rules:\n%s", list)
	}
}
