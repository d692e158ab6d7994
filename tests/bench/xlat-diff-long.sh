#!/usr/bin/env bash
# Long differential run of the translator (not in `make check`, whose
# check-xlat-diff runs 20,000 + 3,000 cases): CASES cases for each of
# several seeds, every fourth seed with XLAT_OPT_EXACT_FAULTS and
# XLAT_OPT_CROSSCHECK, native vs translated (tests/xlat/xlat_diff.c).
# Prints cases and mismatches per seed and a total; exit 1 on a mismatch
# (xlat_diff stops a seed after 10 mismatches and prints them).
#
#   tests/bench/xlat-diff-long.sh [BUILD_DIR] [CASES_PER_SEED] [SEEDS...]
#   default: build, 250000, seeds 0x1 0x2 0x3 0x4 (1,000,000 cases)
set -u
build=${1:-build}
cases=${2:-250000}
shift $(($# > 2 ? 2 : $#))
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0x1 0x2 0x3 0x4)
bin=$build/bin/xlat_diff
[ -x "$bin" ] || { echo "xlat-diff-long: $bin missing (make all)" >&2; exit 2; }
total=0
bad=0
i=0
start=$(date +%s)
for s in "${seeds[@]}"; do
	i=$((i + 1))
	opts=""
	[ $((i % 4)) -eq 0 ] && opts="-e -x"
	[ $((i % 4)) -eq 2 ] && opts="-e -x -u" # pretrans build's default options
	t0=$(date +%s)
	out=$("$bin" -s "$s" -n "$cases" $opts)
	rc=$?
	line=$(printf '%s\n' "$out" | grep '^xlat_diff: .* cases' | tail -1)
	n=$(printf '%s\n' "$line" | sed -n 's/^xlat_diff: \([0-9]*\) cases.*/\1/p')
	m=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) mismatches$/\1/p')
	if [ -z "$n" ] || [ -z "$m" ]; then
		printf '%s\n' "$out" | tail -40
		echo "seed $s: xlat_diff failed (exit $rc)"
		bad=$((bad + 1))
		continue
	fi
	[ "$m" -gt 0 ] && printf '%s\n' "$out" | grep -v '^xlat_diff:' | head -200
	echo "seed $s${opts:+ ($opts)}: $n cases, $m mismatches, $(($(date +%s) - t0)) s"
	total=$((total + n))
	bad=$((bad + m))
done
echo "xlat-diff-long: $total cases over ${#seeds[@]} seeds, $bad mismatches, $(($(date +%s) - start)) s"
[ "$bad" -eq 0 ]
