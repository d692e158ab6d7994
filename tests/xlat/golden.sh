#!/usr/bin/env bash
# Golden files of the translator: every tests/xlat/golden/*.in is translated
# by xlat_golden and compared with its .out (check), or the .out is rewritten
# (rebase).  Usage: golden.sh check|rebase XLAT_GOLDEN_BINARY
set -u -o pipefail
mode=$1
bin=$2
dir=$(dirname "$0")/golden
fail=0
n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for in in "$dir"/*.in; do
	out=${in%.in}.out
	n=$((n + 1))
	if [ "$mode" = rebase ]; then
		"$bin" "$in" > "$out" || { echo "golden: $bin failed on $in" >&2; fail=1; }
		continue
	fi
	if [ ! -f "$out" ]; then
		echo "golden: $out missing (run: make rebase-xlat-golden)" >&2
		fail=1
		continue
	fi
	# the translator's own status counts: one that crashes after printing
	# everything must not pass
	if ! "$bin" "$in" >"$tmp"; then
		echo "golden: $bin failed on $in" >&2
		fail=1
		continue
	fi
	if ! diff -u "$out" "$tmp"; then
		echo "golden: $in differs from $out (if intended: make rebase-xlat-golden)" >&2
		fail=1
	fi
done
if [ "$n" -eq 0 ]; then
	echo "golden: no .in files in $dir" >&2
	exit 1
fi
echo "golden: $n files, $([ $fail -eq 0 ] && echo ok || echo FAILED) ($mode)"
exit $fail
