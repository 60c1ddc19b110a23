#!/usr/bin/env bash
# Known-vulnerability check: govulncheck against a database built from the
# golang.org/x/vulndb module, both pinned in tools/vuln/go.mod, so that the
# check needs only the Go module proxy and gives the same answer for the same
# pins. It fails (exit status 3) when the code calls a vulnerable function of
# the standard library or of a dependency; vulnerabilities in code that is
# not reachable are listed but do not fail it.
#
# The database is built once per vulndb version into .tools/vulndb/<version>.
# VULNCHECK_BENCH=1 also checks the bench/registry module (its own go.mod; a
# benchmark harness that is not shipped).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.26.11}"
GO="${GO:-go}"
bin="$root/.tools/bin"
cache="$root/.tools/vulndb"

# The tools, at the versions tools/vuln/go.mod pins.
"$GO" -C "$here" build -o "$bin/" golang.org/x/vuln/cmd/govulncheck golang.org/x/vulndb/cmd/indexdb

# The database: the OSV records of the pinned vulndb module, indexed.
vulndb=$("$GO" -C "$here" list -m -f '{{.Version}}' golang.org/x/vulndb)
db="$cache/$vulndb"
if [ ! -f "$db/index/db.json.gz" ]; then
	"$GO" -C "$here" mod download golang.org/x/vulndb
	src=$("$GO" -C "$here" list -m -f '{{.Dir}}' golang.org/x/vulndb)
	echo "building the vulnerability database from golang.org/x/vulndb@$vulndb"
	mkdir -p "$cache"
	# Other versions' databases are stale once the pin moves.
	find "$cache" -mindepth 1 -maxdepth 1 ! -name "$vulndb" -exec rm -rf {} +
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	"$bin/indexdb" -vulns "$src/data/osv" -out "$tmp/db"
	rm -rf "$db"
	mv "$tmp/db" "$db"
fi

echo "vulnerability database: golang.org/x/vulndb@$vulndb"
status=0
echo "govulncheck ./... (module github.com/proximity-ve/proximity)"
"$bin/govulncheck" -C "$root" -db "file://$db" -show version ./... || status=$?
if [ "${VULNCHECK_BENCH:-0}" != 0 ]; then
	echo "govulncheck ./... (module bench/registry)"
	"$bin/govulncheck" -C "$root/bench/registry" -db "file://$db" ./... || { s=$?; [ "$status" -ne 0 ] || status=$s; }
fi
exit "$status"
