#!/usr/bin/env bash
# Benchmark of `pretrans build --reuse` (docs/diff.md, "reuse").  Real pair:
# the -dbg vmlinux of two Debian 12 cloud kernels (default 6.1.0-47 ->
# 6.1.0-50, fetched into ${BTKERN_CACHE:-$HOME/.cache/btkern} by
# tests/tools/fetch-debian-kernel.sh); also a same-version rebuild (OLD ==
# NEW) and the synthetic diffpair variants.  For each case: the full build's
# and the incremental build's wall time (best of RUNS, default 3), the share, blocks reused and
# translated, and whether the two databases are identical (byte for byte,
# and `pretrans stats --json`).  A benchmark, not a test: it never fails on a
# figure (it fails only if a result differs from the full build's).
#
#   tests/bench/reuse-bench.sh [BUILD_DIR] [OLD_ABI] [NEW_ABI]
set -euo pipefail

build=${1:-build}
old_abi=${2:-6.1.0-47}
new_abi=${3:-6.1.0-50}
jobs=${JOBS:-$(nproc)}
runs=${RUNS:-3}
pretrans=$build/bin/pretrans
export SOURCE_DATE_EPOCH=1

old=$(tests/tools/fetch-debian-kernel.sh "$old_abi")
new=$(tests/tools/fetch-debian-kernel.sh "$new_abi")
tmp=$(mktemp -d /tmp/reuse-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

# shellcheck disable=SC2034 # wall and cpu are name references: they set the caller's variables
secs() { # WALLVAR CPUVAR CMD...: best wall seconds of $runs runs of CMD and that
	# run's CPU seconds (user + sys; stderr of CMD to $tmp/log)
	local -n wall=$1 cpu=$2
	shift 2
	local r u sy best='' bcpu=''
	for _ in $(seq "$runs"); do
		read -r r u sy < <({
			TIMEFORMAT='%R %U %S'
			time "$@" 2>"$tmp/log"
		} 2>&1)
		if [ -z "$best" ] || [ "$(echo "$r < $best" | bc)" = 1 ]; then
			best=$r
			bcpu=$(echo "$u + $sy" | bc)
		fi
	done
	wall=$best
	cpu=$bcpu
}

# CASE OLD_IMAGE NEW_IMAGE: full builds of both, then NEW --reuse OLD's db
bench_case() {
	local name=$1 oimg=$2 nimg=$3 w_full c_full w_inc c_inc line same
	"$pretrans" build "$oimg" -o "$tmp/old.tcdb" -j "$jobs" 2>/dev/null
	secs w_full c_full "$pretrans" build "$nimg" -o "$tmp/full.tcdb" -j "$jobs"
	secs w_inc c_inc "$pretrans" build "$nimg" -o "$tmp/inc.tcdb" -j "$jobs" --reuse "$tmp/old.tcdb"
	line=$(grep 'pretrans: reuse' "$tmp/log" | sed 's/^pretrans: reuse [^:]*: //')
	same=identical
	if ! cmp -s "$tmp/full.tcdb" "$tmp/inc.tcdb"; then
		same="FILES DIFFER"
		fail=1
	fi
	"$pretrans" stats "$tmp/full.tcdb" --json >"$tmp/full.json"
	"$pretrans" stats "$tmp/inc.tcdb" --json >"$tmp/inc.json"
	cmp -s "$tmp/full.json" "$tmp/inc.json" || {
		same="$same, STATS DIFFER"
		fail=1
	}
	printf '  %s\n    wall: full %.2f s, --reuse %.2f s = %.1f%%; CPU: full %.2f s, --reuse %.2f s = %.1f%%\n    %s; %s\n' \
		"$name" "$w_full" "$w_inc" "$(echo "100 * $w_inc / $w_full" | bc -l)" \
		"$c_full" "$c_inc" "$(echo "100 * $c_inc / $c_full" | bc -l)" "$line" "$same"
}

echo "reuse-bench: $jobs jobs on $(nproc) CPUs ($(uname -m)), best of $runs runs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg); targets (CPU): --reuse <= 25% of full for the" \
	"same version, <= 15% from 6.1.0-47 to 6.1.0-50 (issue 13)"
make --no-print-directory BUILD="$build" diffpair >/dev/null
dp=$build/guests/diffpair
bench_case "diffpair base -> base" "$dp/base.elf" "$dp/base.elf"
bench_case "diffpair base -> change" "$dp/base.elf" "$dp/change.elf"
bench_case "diffpair base -> shift" "$dp/base.elf" "$dp/shift.elf"
bench_case "$new_abi -> $new_abi (same)" "$new" "$new"
bench_case "$old_abi -> $new_abi" "$old" "$new"
exit $fail
