#!/usr/bin/env bash
# Where the translator's host bytes go (not a timed test, not in `make
# check`): xlat_bench -f (with and without -u) over the test guest kernel and Debian's vmlinux
# prints the host/guest byte ratio and the host bytes by category (inline
# soft-MMU probes, slow paths, exit stubs, flag saves, spills, the entry
# check, copied and rewritten instructions; enum xlat_code_cat).  With
# --db it also runs `pretrans build` of Debian's vmlinux and prints the
# database size.
#
#   tests/bench/xlat-size-bench.sh [--db] [BUILD_DIR] [ABI]
#   defaults: build, 6.1.0-50 (tests/tools/fetch-debian-kernel.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
db=0
if [ "${1:-}" = --db ]; then
	db=1
	shift
fi
build=${1:-build}
abi=${2:-6.1.0-50}
make -s BUILD="$build" "$build/bin/xlat_bench" "$build/bin/pretrans" "$build/guests/kernel.elf" >&2
vm=$(tests/tools/fetch-debian-kernel.sh "$abi")
echo "xlat-size-bench: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)"
# pretrans build's options: -u (XLAT_OPT_UNDEF_FLAGS) where this CPU holds
# the rule (xlat_diff -u checks it against this CPU), and without it, the
# options of a CPU that does not
for img in "$build/guests/kernel.elf" "$vm"; do
	for u in -u ''; do
		echo "xlat_bench -f $u $(basename "$img"):"
		"$build/bin/xlat_bench" -f $u "$img" 2>&1 | grep -v '^  refused' || {
			[ "$u" = -u ] && echo "  (-u refused: this CPU does not hold the undefined-flags rule)"
		}
	done
done
if [ "$db" = 1 ]; then
	out=$(mktemp -d /tmp/xlat-size-bench.XXXXXX)
	trap 'rm -rf "$out"' EXIT
	SOURCE_DATE_EPOCH=1700000000 "$build/bin/pretrans" build "$vm" -o "$out/vmlinux.tcdb" --jobs 2 >&2
	echo "pretrans build $vm: database $(stat -c %s "$out/vmlinux.tcdb") bytes"
	"$build/bin/pretrans" stats "$out/vmlinux.tcdb" | grep -E '^  (guest|host) '
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
