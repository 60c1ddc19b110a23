#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after another, each
# for FUZZTIME (a Go duration; default 20s), and prints per target its
# executions and new interesting inputs. Fails on the first failure; the
# failing input is written to the package's testdata/fuzz/FuzzName/.
#
#   tools/fuzz.sh                  # every target
#   FUZZTIME=5m tools/fuzz.sh      # longer
#   PKGS=./internal/validate tools/fuzz.sh   # one package's targets
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}
PKGS=${PKGS:-./...}

# `go test -list` prints a package's matching names, then "ok  <package>".
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for n in "${names[@]+"${names[@]}"}"; do targets+=("$pkg $n"); done
		names=()
		;;
	*) names=() ;;
	esac
# shellcheck disable=SC2086 # PKGS is a list of patterns
done < <($GO test -list '^Fuzz' $PKGS)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets found" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	start=$(date +%s)
	if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
		cat "$log"
		echo "fuzz: FAIL $pkg $name" >&2
		exit 1
	fi
	# The last progress line: "fuzz: elapsed: 20s, execs: 123 (6/sec), new interesting: 4 (total: 30)".
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	printf '%-70s execs %10s  new interesting %5s  (%ss)\n' "$pkg.$name" "${execs:-?}" "${newi:-?}" "$(($(date +%s) - start))"
done
echo "fuzz: ok"
