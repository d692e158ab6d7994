#!/usr/bin/env bash
# Benchmark of `pretrans build` on a real Debian 12 kernel (not a timed test,
# not part of `make check`).
#
#   tests/bench/pretrans-bench.sh [ABI]        ABI defaults to 6.1.0-50
#
# Fetches the debug vmlinux (tests/tools/fetch-debian-kernel.sh), builds
# $BUILD/bin/pretrans (BUILD defaults to build), then prints: wall and CPU
# time of `pretrans build` with --jobs 1, --jobs 2 and the default, the wall
# time of `objdump -d` on the same file in the same run and the ratio,
# function-byte coverage of .text and .init.text, database size, peak RSS
# and blocks/s, each against its target.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
abi=${1:-6.1.0-50}
vm=$(tests/tools/fetch-debian-kernel.sh "$abi")
make -s BUILD="$BUILD" "$BUILD/bin/pretrans" >&2
P=$BUILD/bin/pretrans
out=$(mktemp -d /tmp/pretrans-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
export SOURCE_DATE_EPOCH=1700000000

calc() { awk "BEGIN {print $*}"; }

# run NAME ARGS...: /usr/bin/time -v of one build; sets wall, cpu, rss (KiB)
run() {
	local name=$1
	shift
	/usr/bin/time -v "$P" build "$vm" -o "$out/$name.tcdb" "$@" 2>"$out/$name.time" >/dev/null
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$out/$name.time")
	cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$out/$name.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/$name.time")
	grep '^pretrans:' "$out/$name.time" >&2 || true
}

echo "pretrans bench on $vm ($(stat -c %s "$vm") bytes), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$vm" >/dev/null # page cache warm for every contender

t0=$(date +%s.%N)
objdump -d "$vm" >/dev/null
t1=$(date +%s.%N)
objdump_wall=$(calc "$t1 - $t0")

run j1 --jobs 1
j1_wall=$wall j1_cpu=$cpu j1_rss=$rss
run j2 --jobs 2
j2_wall=$wall j2_cpu=$cpu j2_rss=$rss
run jd
jd_wall=$wall jd_cpu=$cpu jd_rss=$rss
same=identical
cmp -s "$out/j1.tcdb" "$out/j2.tcdb" || same=DIFFERENT
cmp -s "$out/j1.tcdb" "$out/jd.tcdb" || same=DIFFERENT

"$P" stats "$out/jd.tcdb" --json >"$out/stats.json"
"$P" stats "$out/jd.tcdb" >"$out/stats.txt"
size=$(stat -c %s "$out/jd.tcdb")
blocks=$(sed -n 's/.*"blocks": \([0-9]*\),.*/\1/p' "$out/stats.json")
cov() { # section -> coverage percent
	grep -o "{\"name\": \"$1\"[^}]*}" "$out/stats.json" | sed -n 's/.*"coverage_percent": \([0-9.]*\).*/\1/p'
}
text_cov=$(cov .text)
init_cov=$(cov .init.text)
total_cov=$(sed -n 's/.*"coverage_percent": \([0-9.]*\),$/\1/p' "$out/stats.json" | head -1)

verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "MISSED"; fi; }
printf '\n%-44s %12s %12s %10s\n' "measure" "value" "target" "verdict"
printf '%-44s %11.2fs %12s %10s\n' "pretrans build wall (default jobs=$(nproc))" "$jd_wall" "<= 6 s" "$(verdict "$jd_wall <= 6")"
printf '%-44s %11.2fs %12s\n' "pretrans build CPU (user+sys)" "$jd_cpu" ""
printf '%-44s %11.2fs %12s\n' "  --jobs 1 wall / CPU" "$j1_wall" "$j1_cpu s"
printf '%-44s %11.2fs %12s\n' "  --jobs 2 wall / CPU" "$j2_wall" "$j2_cpu s"
printf '%-44s %11.2fx %12s\n' "  speed-up --jobs 2 over --jobs 1" "$(calc "$j1_wall / $j2_wall")" ""
printf '%-44s %11.2fs %12s\n' "objdump -d wall (same run)" "$objdump_wall" ""
printf '%-44s %11.2fx %12s %10s\n' "pretrans wall / objdump wall" "$(calc "$jd_wall / $objdump_wall")" "< 1 (stretch)" "$(verdict "$jd_wall < $objdump_wall")"
printf '%-44s %11s%% %12s %10s\n' "function-byte coverage .text" "$text_cov" ">= 99%" "$(verdict "$text_cov >= 99")"
printf '%-44s %11s%% %12s %10s\n' "function-byte coverage .init.text" "$init_cov" ">= 99%" "$(verdict "$init_cov >= 99")"
printf '%-44s %11s%% %12s\n' "function-byte coverage, all sections" "$total_cov" ""
printf '%-44s %10.1fMB %12s %10s\n' "database size" "$(calc "$size / 1048576")" "<= 60 MB" "$(verdict "$size <= 62914560")"
rss_max=$(awk -v a="$jd_rss" -v b="$j1_rss" -v c="$j2_rss" 'BEGIN {m = a + 0; if (b + 0 > m) m = b + 0; if (c + 0 > m) m = c + 0; print m}')
printf '%-44s %10.1fMB %12s %10s\n' "peak RSS (max of the three runs)" "$(calc "$rss_max / 1024")" "<= 1024 MB" "$(verdict "$rss_max <= 1048576")"
printf '%-44s %12.0f %12s\n' "blocks/s (default jobs)" "$(calc "$blocks / $jd_wall")" ""
printf '%-44s %12s %12s %10s\n' "--jobs 1 / 2 / default outputs" "$same" "identical" "$([ "$same" = identical ] && echo met || echo MISSED)"
echo
sed -n '/^blocks/,$p' "$out/stats.txt"
