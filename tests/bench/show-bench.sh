#!/usr/bin/env bash
# Benchmark of `pretrans show` on a real Debian 12 kernel against
# `objdump --disassemble=FUNC` on the same file in the same run (not a test,
# not part of `make check`; it downloads the kernel when it is not cached).
#
#   tests/bench/show-bench.sh [ABI] [FUNCTION]   defaults: 6.1.0-50 do_syscall_64
#
# BUILD (default build) holds bin/pretrans; DB (default a temporary one,
# built here in ~30 s) is the database of that vmlinux; BASELINE=path of
# another pretrans binary to time it too (e.g. one built from an older
# commit); RUNS (default 5).  Prints median and best wall time and peak RSS
# of: show FUNCTION, show --guest FUNCTION, objdump.  Not pinned (taskset is
# not used: the numbers are wall times on a shared machine, failed runs are
# counted and reported).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
abi=${1:-6.1.0-50}
fn=${2:-do_syscall_64}
runs=${RUNS:-5}
vm=$(tests/tools/fetch-debian-kernel.sh "$abi")
P=$BUILD/bin/pretrans
tmp=$(mktemp -d /tmp/show-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$tmp/config}
db=${DB:-}
if [ -z "$db" ]; then
	db=$tmp/vmlinux.tcdb
	echo "show-bench: building $db from $vm ..."
	"$P" build "$vm" -o "$db" 2>/dev/null
fi

# timed LABEL CMD...: median and best wall time and the largest peak RSS
timed() {
	local label=$1 times=() rss=0 failed=0 i
	shift
	for i in $(seq "$runs"); do
		if /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err"; then
			read -r t m <"$tmp/t"
			times+=("$t")
			[ "$m" -gt "$rss" ] && rss=$m
		else
			failed=$((failed + 1))
		fi
	done
	if [ ${#times[@]} = 0 ]; then
		printf '  %-40s all %d runs failed: %s\n' "$label" "$runs" "$(head -c 200 "$tmp/err")"
		return
	fi
	local sorted
	sorted=$(printf '%s\n' "${times[@]}" | sort -n)
	printf '  %-40s median %5.2f s  best %5.2f s  peak RSS %4d MB  (%d failed)\n' "$label" \
		"$(echo "$sorted" | sed -n "$(((${#times[@]} + 1) / 2))p")" "$(echo "$sorted" | head -1)" \
		$((rss / 1024)) "$failed"
}

echo "show-bench: $fn in $vm ($(($(stat -c %s "$vm") >> 20)) MiB), $runs runs each, load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$vm" >/dev/null # the page cache holds the file for every contender
timed "objdump --disassemble=$fn" objdump -d --disassemble="$fn" "$vm"
timed "pretrans show $fn" "$P" show "$db" "$fn"
timed "pretrans show --guest $fn" "$P" show "$db" "$fn" --guest
if [ -n "${BASELINE:-}" ]; then
	timed "baseline: $BASELINE show $fn" "$BASELINE" show "$db" "$fn"
fi
