#!/usr/bin/env bash
# vulndb.sh builds the Go vulnerability database that `make vuln` runs
# govulncheck against, offline: the OSV entries of the golang.org/x/vulndb
# module pinned in test/tools/vulndb/go.mod (fetched from the Go module proxy
# and checked against test/tools/vulndb/go.sum), indexed into the v1 database
# layout (index/db.json, index/modules.json, ID/<id>.json, each also .gz) by
# that module's own cmd/indexdb. It builds once into the tools cache, keyed by
# the pinned version, and prints the directory.
#
# The entries' "modified" times are zero: x/vulndb's data/osv leaves them
# unset and its cmd/gendb fills them in from the git history, which a module
# does not have. govulncheck matches by module, version and symbol, not by
# date; only the "DB updated" line of its output shows the zero time.
#
# Usage: test/tools/vulndb.sh [print-dir]
#        test/tools/vulndb.sh scan [govulncheck arguments...]
#
# scan runs the pinned govulncheck (test/tools/lint) against the database and
# fails when the code calls a vulnerable function, except for the entries of
# test/tools/vulndb/accepted.txt, which it lists on every run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${FRONTGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/frontgate}
version=$(awk '$1=="golang.org/x/vulndb" {print $2; exit}' "$here/vulndb/go.mod")
dir="$cache_root/vulndb/$version"

build() {
	if [ -f "$dir/index/modules.json" ]; then
		return
	fi
	echo ">> building the vulnerability database from golang.org/x/vulndb $version (first time only, ~1-2 min)" >&2
	local start=$SECONDS src tmp
	src=$(cd "$here/vulndb" && go mod download golang.org/x/vulndb && go list -m -f '{{.Dir}}' golang.org/x/vulndb)
	mkdir -p "$cache_root/vulndb"
	tmp=$(mktemp -d "$cache_root/vulndb/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$here/vulndb" && go tool indexdb -vulns "$src/data/osv" -out "$tmp/db")
	rm -rf "$dir"
	mv "$tmp/db" "$dir"
	rmdir "$tmp"
	trap - EXIT
	echo ">> built the vulnerability database ($(find "$dir/ID" -name '*.json' | wc -l) entries) in $((SECONDS - start)) s" >&2
}

case "${1:-}" in
print-dir)
	echo "$dir"
	;;
"")
	build
	echo "$dir"
	;;
scan)
	shift
	build
	root=$(cd "$here/../.." && pwd)
	out=$(mktemp)
	trap 'rm -f "$out"' EXIT
	rc=0
	(cd "$root" && go tool -modfile=test/tools/lint/go.mod govulncheck -db "file://$dir" "$@") >"$out" 2>&1 || rc=$?
	case $rc in
	0 | 3) ;; # 3: vulnerable functions are called; see which below
	*) cat "$out"; echo "govulncheck failed (exit $rc)" >&2; exit "$rc" ;;
	esac
	list="$here/vulndb/accepted.txt"
	found=$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]{4}-[0-9]+' "$out" | grep -oE 'GO-[0-9]{4}-[0-9]+' | sort -u || true)
	accepted=$(grep -oE '^GO-[0-9]{4}-[0-9]+' "$list" | sort -u || true)
	new=$(comm -23 <(echo "$found") <(echo "$accepted") | grep . || true)
	if [ -n "$new" ]; then
		cat "$out"
		echo ">> FAIL: the code calls vulnerable functions:" $new "- fix them (see above), or list them with a reason in test/tools/vulndb/accepted.txt" >&2
		exit 1
	fi
	# Every finding is accepted: its summary, without the call traces.
	grep -vE '^ +#[0-9]+: |^ +Example traces found:' "$out"
	for id in $(comm -12 <(echo "$found") <(echo "$accepted")); do
		echo ">> $id is called, accepted until fixed: $(grep "^$id " "$list" | cut -d' ' -f2-)"
	done
	for id in $(comm -13 <(echo "$found") <(echo "$accepted")); do
		echo ">> $id is no longer called: remove it from test/tools/vulndb/accepted.txt"
	done
	;;
*)
	echo "usage: $0 [print-dir | scan [govulncheck arguments...]]" >&2
	exit 2
	;;
esac
