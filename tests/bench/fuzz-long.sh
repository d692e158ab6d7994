#!/usr/bin/env bash
# Long runs of the two libFuzzer targets (benchmark-style, not in make check,
# which runs each for about 20 s): the ELF reader and its shared kernel
# checks (fuzz_elf) and the translator (fuzz_xlat), SECONDS each, one after
# the other on one core, from the same seeds as make check.  Prints each
# target's final libFuzzer statistics and whether it found a crash (an
# artifact file is written under BUILD/fuzz/long-*/ then).  TARGETS picks
# one of them, so two runs can go side by side on two cores.
#
#   tests/bench/fuzz-long.sh [BUILD_DIR] [SECONDS] [TARGETS]
#                                      (default build, 3600, "elf xlat")
set -u
build=${1:-build}
secs=${2:-3600}
targets=${3:-elf xlat}
cd "$(dirname "$0")/../.." || exit 1
make --no-print-directory BUILD="$build" "$build/fuzz/fuzz_elf" "$build/fuzz/fuzz_xlat" \
	"$build/fuzz/seeds/.done" >/dev/null || exit 1
rc=0
for t in $targets; do
	case $t in elf | xlat) ;; *)
		echo "fuzz-long.sh: error: unknown target '$t' (elf or xlat)" >&2
		exit 2
		;;
	esac
	out=$build/fuzz/long-$t
	rm -rf "$out" && mkdir -p "$out/corpus"
	seeds=$build/fuzz/seeds
	[ "$t" = xlat ] && seeds=$build/fuzz/corpus-xlat
	mkdir -p "$seeds"
	start=$(date +%s)
	if "$build/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$seeds" \
		>"$out/log" 2>&1; then
		verdict="no crash"
	else
		verdict="CRASH (see $out/log and the artifact in $out/)"
		rc=1
	fi
	echo "fuzz_$t: $(($(date +%s) - start)) s, $verdict;" \
		"$(grep -E '^stat::number_of_executed_units' "$out/log" | awk '{print $2}') inputs run," \
		"corpus $(find "$out/corpus" -type f | wc -l) files," \
		"peak RSS $(grep -E '^stat::peak_rss_mb' "$out/log" | awk '{print $2}') MB"
done
exit $rc
