package pvesim

import (
	"fmt"
	"io"
	"strings"
)

// nft answers the part of nftables the agent uses on the node: `nft -f -`
// (a script that ends by defining tables, which replace the ruleset the
// simulator keeps), `nft list ruleset` / `nft list table ...`, and
// `nft flush ruleset`.
func nft(st *Store, args []string, stdout, stderr io.Writer) int {
	cmd := strings.Join(args, " ")
	err := st.Update(func(n *Node) error {
		switch {
		case cmd == "-f -":
			b, err := io.ReadAll(Stdin)
			if err != nil {
				return err
			}
			script := string(b)
			i := strings.LastIndex(script, "\ntable ")
			if i < 0 || !strings.HasSuffix(strings.TrimSpace(script), "}") {
				return fmt.Errorf("/dev/stdin:1:1-5: Error: syntax error, unexpected end of file")
			}
			n.Ruleset = script[i+1:]
		case cmd == "list ruleset" || strings.HasPrefix(cmd, "list table"):
			fmt.Fprint(stdout, n.Ruleset)
		case cmd == "flush ruleset":
			n.Ruleset = ""
		default:
			return fmt.Errorf("Error: simulated nft does not know `%s`", cmd)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
