#!/usr/bin/env bash
# The HTML report of `pretrans diff` in headless Chromium: load-to-interactive,
# sort, class filter and typed filter times (tests/bench/diff_html_measure.py),
# for Debian 6.1.0-47 -> 6.1.0-50 (when both vmlinux files are cached, else
# said so) and for a synthetic 50 000-function pair (tests/tools/diff-synth-elf.py).
#
#   tests/bench/diff-html-bench.sh BUILD            # this version's ptdiff
#   BEFORE_REV=45d75e4 tests/bench/diff-html-bench.sh BUILD   # and an older one
#
# BEFORE_REV: a git revision whose ptdiff is built (git archive into a
# temporary directory) and measured the same way; BEFORE_PTDIFF=path uses a
# binary instead.  RUNS (default 3) fresh browsers per report; medians, failed
# runs counted.  Not pinned: the machine's other work shows in the figures
# (load average printed).  There is no QEMU/native counterpart to compare
# with: the subject is the page in a browser.
set -euo pipefail
build=${1:?usage: diff-html-bench.sh BUILD}
runs=${RUNS:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/diff-html-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
command -v chromium >/dev/null || { echo "diff-html-bench: chromium is not installed: run tests/tools/deps.sh" >&2; exit 1; }

before=${BEFORE_PTDIFF:-}
if [ -n "${BEFORE_REV:-}" ] && [ -z "$before" ]; then
	echo "building ptdiff of $BEFORE_REV ..."
	mkdir -p "$tmp/src"
	git -C "$root" archive "$BEFORE_REV" | tar -x -C "$tmp/src"
	make -s -C "$tmp/src" -j2 BUILD="$tmp/build" "$tmp/build/bin/ptdiff" >/dev/null
	before=$tmp/build/bin/ptdiff
fi

echo "$(chromium --version 2>/dev/null); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $runs runs"
python3 "$root/tests/tools/diff-synth-elf.py" "$tmp/s-old.elf" "$tmp/s-new.elf" --functions 50000 >/dev/null
pairs=("synthetic 50k:$tmp/s-old.elf:$tmp/s-new.elf")
k=$HOME/.cache/btkern
if [ -f "$k/vmlinux-6.1.0-47-cloud-amd64" ] && [ -f "$k/vmlinux-6.1.0-50-cloud-amd64" ]; then
	pairs=("Debian 6.1.0-47 -> 6.1.0-50:$k/vmlinux-6.1.0-47-cloud-amd64:$k/vmlinux-6.1.0-50-cloud-amd64" "${pairs[@]}")
else
	echo "Debian 6.1.0-47/-50 not cached (tests/tools/fetch-debian-kernel.sh 6.1.0-47 and 6.1.0-50): synthetic pair only"
fi

for p in "${pairs[@]}"; do
	IFS=: read -r label old new <<<"$p"
	for which in before after; do
		bin=$build/bin/ptdiff
		if [ "$which" = before ]; then
			[ -n "$before" ] || continue
			bin=$before
		fi
		t0=$(date +%s.%N)
		"$bin" --html "$tmp/r.html" "$old" "$new" >/dev/null 2>&1 || true
		t1=$(date +%s.%N)
		[ -s "$tmp/r.html" ] || { echo "$label ($which): no report written" >&2; exit 1; }
		awk -v l="$label" -v w="$which" -v s="$(stat -c %s "$tmp/r.html")" -v a="$t0" -v b="$t1" \
			'BEGIN { printf "%s, %s: report %.1f MB, written in %.1f s\n", l, w, s / 1e6, b - a }'
		python3 "$here/diff_html_measure.py" "$tmp/r.html" "$runs"
		rm -f "$tmp/r.html"
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
