#!/usr/bin/env bash
# Benchmark of `pretrans diff` on real input: the -dbg vmlinux of two Debian
# 12 cloud kernels (default 6.1.0-47 -> 6.1.0-50), fetched into
# ${BTKERN_CACHE:-$HOME/.cache/btkern} by tests/tools/fetch-debian-kernel.sh.
# Prints the diff wall time (best and median of N runs), the count per
# category, and how many functions a naive `objdump -d | diff` flags (the
# engine's count; with OBJDUMP=1 also by really running objdump on both
# images, which takes a few minutes).  Writes the HTML report to
# ${HTML:-/tmp/diff-bench.html}.  A benchmark, not a test: it never fails
# on a figure.
#
#   tests/bench/diff-bench.sh [BUILD_DIR] [OLD_ABI] [NEW_ABI]
set -euo pipefail

build=${1:-build}
old_abi=${2:-6.1.0-47}
new_abi=${3:-6.1.0-50}
runs=${RUNS:-5}
html=${HTML:-/tmp/diff-bench.html}
ptdiff=$build/bin/ptdiff

old=$(tests/tools/fetch-debian-kernel.sh "$old_abi")
new=$(tests/tools/fetch-debian-kernel.sh "$new_abi")
tmp=$(mktemp -d /tmp/diff-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "diff-bench: $old_abi -> $new_abi on $(nproc) CPUs ($(uname -m))"
for f in "$old" "$new"; do
	text_hex=$(readelf -SW "$f" | awk '{for (i = 1; i < NF; i++) if ($i == ".text") print $(i + 4)}')
	printf '  %s: %s MiB file, .text %s KiB\n' "$f" "$(($(stat -c %s "$f") >> 20))" \
		"$((16#$text_hex >> 10))"
done

# warm the page cache once, then time whole runs of the command
# exit 1 means "the builds differ" (docs/diff.md), not a failure
"$ptdiff" --json --no-listings "$old" "$new" >"$tmp/diff.json" 2>/dev/null || [ $? -eq 1 ]
timed() { # LABEL ARGS...: best and median wall time of $runs runs
	local label=$1 times=() i s e
	shift
	for i in $(seq "$runs"); do
		s=$(date +%s.%N)
		"$ptdiff" "$@" "$old" "$new" >/dev/null 2>"$tmp/err" || [ $? -eq 1 ]
		e=$(date +%s.%N)
		times+=("$(echo "$e - $s" | bc)")
	done
	local sorted
	sorted=$(printf '%s\n' "${times[@]}" | sort -n)
	printf '  %-44s best %5.2f s, median %5.2f s\n' "$label" "$(echo "$sorted" | head -1)" \
		"$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")"
}
echo "wall time ($runs runs each; target <= 2 s for the diff itself):"
timed "diff (classification, --no-listings)" --no-listings
timed "--json --no-listings" --json --no-listings
timed "text with guest diffs, no translations" --no-xlat
timed "text with guest + translation diffs" 
echo "  phases of the last run: $(tail -1 "$tmp/err" | sed 's/^pretrans diff: //')"
echo "  load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$tmp/diff.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
matched = s["identical"] + s["moved"] + s["changed"]
print(f"functions: old {d['old']['functions']}, new {d['new']['functions']}, "
      f"{s['total']} entries, {matched} matched by name")
for c in ("identical", "moved", "changed", "renamed", "added", "removed"):
    print(f"  {c:10s} {s[c]:6d}  {100.0 * s[c] / max(1, s['total']):5.1f} %")
print(f"byte-identical among matched: {100.0 * s['identical'] / max(1, matched):.1f} %; "
      f"identical once addresses are normalised (identical+moved): "
      f"{100.0 * (s['identical'] + s['moved']) / max(1, matched):.1f} %")
real = s["changed"] + s["renamed"] + s["added"] + s["removed"]
print(f"really changed: {real} functions; a naive objdump -d | diff flags "
      f"{s['naive_flagged']} ({100.0 * s['naive_flagged'] / max(1, s['total']):.1f} %)")
renamed = [f for f in d["functions"] if f["class"] == "renamed"]
for f in renamed[:10]:
    print(f"  renamed: {f['old']['name']} -> {f['new']['name']}")
EOF

if [ "${OBJDUMP:-0}" = 1 ]; then
	s=$(date +%s)
	python3 - "$old" "$new" <<'EOF'
import subprocess, sys, re
def funcs(path):
    p = subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", path], stdout=subprocess.PIPE,
                         text=True)
    cur, res = None, {}
    for line in p.stdout:
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = m.group(1)
            res[cur] = []
        elif cur and line.strip():
            res[cur].append(line)
    p.wait()
    return res
a, b = funcs(sys.argv[1]), funcs(sys.argv[2])
n = sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))
print(f"real objdump -d | diff: {n} of {len(set(a) | set(b))} symbols differ")
EOF
	echo "  (objdump comparison took $(($(date +%s) - s)) s)"
fi

"$ptdiff" --no-listings --html "$html" "$old" "$new" >/dev/null 2>&1 || [ $? -eq 1 ]
echo "HTML report: $html ($(($(stat -c %s "$html") >> 10)) KiB)"
