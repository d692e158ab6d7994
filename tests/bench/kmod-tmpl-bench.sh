#!/usr/bin/env bash
# Benchmark of relocatable translation templates and `pretrans build
# --modules` (docs/kmod.md) on Debian's 6.1.0-50 cloud kernel and its 1,121
# modules, read from ${BTKERN_CACHE:-$HOME/.cache/btkern} (vmlinux-RELEASE
# and linux-image-RELEASE/modules; nothing is downloaded here).
#  1. kmod_tmpl_bench: a sample of vmlinux's functions (every STRIDE-th) as
#     templates instantiated at a KASLR-like slide and an odd one, and a
#     sample of the modules (every MSTRIDE-th) loaded at two addresses, each
#     instantiation compared byte for byte with a direct translation
#     (MISMATCHES must be 0; the script fails otherwise); per-block cost of
#     a translation vs an instantiation, median of 3 passes.
#  2. `pretrans build vmlinux` with and without `--modules` (all modules):
#     wall and CPU seconds (median of RUNS runs, default 3), the modules line.
# Not pinned (the machine is shared; taskset is not used); QEMU TCG and
# native have no counterpart for a translation-time measurement.
#
#   tests/bench/kmod-tmpl-bench.sh [BUILD_DIR] [STRIDE] [MSTRIDE]
set -euo pipefail

build=${1:-build}
stride=${2:-20}
mstride=${3:-10}
rel=${RELEASE:-6.1.0-50-cloud-amd64}
runs=${RUNS:-3}
jobs=${JOBS:-$(nproc)}
cache=${BTKERN_CACHE:-$HOME/.cache/btkern}
vm=$cache/vmlinux-$rel
mods=$cache/linux-image-$rel/modules
for f in "$vm" "$mods"; do
	[ -e "$f" ] || { echo "kmod-tmpl-bench: $f missing (tests/tools/fetch-debian-kernel.sh fetches it)" >&2; exit 2; }
done
tmp=$(mktemp -d /tmp/kmod-tmpl-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME=$tmp/config SOURCE_DATE_EPOCH=1

echo "== templates: $build/bin/kmod_tmpl_bench $vm $mods -s $stride -m $mstride"
"$build/bin/kmod_tmpl_bench" "$vm" "$mods" -s "$stride" -m "$mstride"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
build_times() { # NAME ARGS...: median wall and CPU of RUNS builds (failed runs counted)
	local name=$1 w=() c=() failed=0
	shift
	for _ in $(seq "$runs"); do
		if read -r r u s < <({ TIMEFORMAT='%R %U %S'; time "$build/bin/pretrans" build "$vm" -o "$tmp/x.tcdb" -j "$jobs" "$@" 2>"$tmp/log"; } 2>&1); then
			w+=("$r"); c+=("$(echo "$u + $s" | bc)")
		else
			failed=$((failed + 1))
		fi
	done
	echo "$name: wall $(printf '%s\n' "${w[@]}" | median) s, cpu $(printf '%s\n' "${c[@]}" | median) s (median of ${#w[@]}, $failed failed)"
	grep 'pretrans: modules' "$tmp/log" || true
	ls -l "$tmp/x.tcdb" | awk '{print "  database " $5 " bytes"}'
}
echo "== pretrans build, $jobs jobs, $runs runs each"
build_times "vmlinux alone"
build_times "vmlinux --modules (all $(find "$mods" -name '*.ko*' | wc -l))" --modules "$mods"
