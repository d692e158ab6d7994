#!/usr/bin/env bash
# Module templates on a real boot (docs/kmod.md, "Debian boot"): Debian's
# unmodified 6.1.0-50 cloud vmlinux under btvm with a busybox initramfs
# whose /init loads several Debian modules (with their dependencies, in
# load order) one after the other, each insmod timed in the guest
# (tests/linux/lk-time.c), twice per boot: load all, unload all, load all
# again (the second load reuses the code cache's blocks only where the
# kernel put the module at the same address with the same bytes).
# Two databases, RUNS boots each, interleaved:
#   cold  `pretrans build VMLINUX` (module code translated at run time)
#   warm  `pretrans build VMLINUX --modules MODDIR` (all 1,121 modules)
# Reported per boot, from `btvm --stats=json`: kmod_blocks_from_db,
# kmod_blocks_translated and the share from the database, the fingerprint
# matches and packs inflated, btvm's peak RSS (GNU time), and the insmod
# times; then medians.  Not a test (not in `make check`); the inputs come
# from ${BTKERN_CACHE:-~/.cache/btkern} (tests/tools/fetch-debian-*.sh fetch
# them once).  The machine is shared: the load average is printed.
#
#   tests/bench/kmod-boot-bench.sh [BUILD_DIR] [RUNS]
#     MODULES="m ..."   the modules (default below)
#     COLD_DB=F WARM_DB=F   use these databases instead of building them
#     KEEP=DIR          keep consoles, stderr and databases in DIR
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:-build}
runs=${2:-3}
MODULES=${MODULES:-"md4 crc_itu_t sha3_generic dummy vfat isofs loop xfs"}
# shellcheck source=tests/linux/lib.sh
. tests/linux/lib.sh
LK_BTVM=$build/bin/btvm
lk_fetch || exit 2
work=${KEEP:-$(mktemp -d /tmp/kmod-boot-bench.XXXXXX)}
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config} SOURCE_DATE_EPOCH=1
echo "kmod-boot-bench: $LK_RELEASE, modules: $MODULES, $runs boots per database; load $(cut -d' ' -f1-3 /proc/loadavg)"

timed_build() { # OUT ARGS...: pretrans build, wall and CPU seconds
	local out=$1 t
	shift
	t=$({ TIMEFORMAT='%R %U %S'; time "$build/bin/pretrans" build "$LK_VMLINUX" -o "$out" -j 2 "$@" \
		2>"$out.log"; } 2>&1) || { echo "pretrans build failed: $(tail -n 2 "$out.log")" >&2; exit 1; }
	read -r w u s <<<"$t"
	echo "  pretrans build $*: wall $w s, cpu $(echo "$u + $s" | bc) s, $(stat -c %s "$out") bytes (load $(cut -d' ' -f1 /proc/loadavg))"
	grep 'pretrans: modules' "$out.log" | sed 's/^/    /'
}
cold=${COLD_DB:-$work/cold.tcdb}
warm=${WARM_DB:-$work/warm.tcdb}
[ -n "${COLD_DB:-}" ] || timed_build "$cold"
[ -n "${WARM_DB:-}" ] || timed_build "$warm" --modules "$LK_MODDIR"

# --- the initramfs -------------------------------------------------------------
lk_cc_static "$work/lk-time" tests/linux/lk-time.c || exit 1
cat >"$work/load.sh" <<'EOF'
. /lib/lk.sh
lk_insmod "$1"
EOF
cat >"$work/init" <<EOF
#!/bin/sh
. /lib/lk.sh
lk_setup
lk_mark start
st=0
for round in 1 2; do
	for m in $MODULES; do lk-time run \$round:\$m sh /load.sh \$m || st=1; done
	for m in $MODULES; do lk_rmmod \$m >/dev/null 2>&1; done
done
lk_end \$st
EOF
lk_initramfs_new "$work/root" "$work/init" || exit 1
lk_initramfs_add "$work/root" "$work/lk-time" || exit 1
install -m 644 "$work/load.sh" "$work/root/load.sh"
# shellcheck disable=SC2086 # a list of names
lk_initramfs_add_modules "$work/root" $MODULES || exit 1
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1
nko=$(cat "$work"/root/lib/modules/lk/*.order | sort -u | wc -l)
echo "  initramfs: $nko .ko files ($(cat "$work"/root/lib/modules/lk/*.order | sort -u | xargs -n1 basename | tr '\n' ' '))"

# --- boots -----------------------------------------------------------------------
js() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | head -n 1; }
results=$work/results
: >"$results"
for i in $(seq "$runs"); do
	for kind in cold warm; do
		db=$cold
		[ "$kind" = warm ] && db=$warm
		out=$work/$kind.$i
		mkdir -p "$out"
		LK_PIN="/usr/bin/time -f rss_kb=%M -o $out/time" \
			lk_run_vm btvm "$out" "$work/initrd.cpio" "$LK_CMDLINE" 512M 600 \
			--tcdb "$db" --stats=json --log kmod:info
		from=$(js "$out/stderr" kmod_blocks_from_db)
		tr=$(js "$out/stderr" kmod_blocks_translated)
		share=$(awk -v a="${from:-0}" -v b="${tr:-0}" 'BEGIN { if (a + b) printf "%.1f", 100 * a / (a + b); else print "-" }')
		ins=$(lk_marks "$out/console.txt" phase | awk '{ split($1, k, ":"); t[k[1]] += $2; if ($3 != 0) bad++ }
			END { printf "insmod round1 %.1f ms round2 %.1f ms%s", t[1] / 1e6, t[2] / 1e6, bad ? " (" bad " FAILED)" : "" }')
		rss=$(sed -n 's/^rss_kb=//p' "$out/time" 2>/dev/null)
		status=ok
		[ "$LK_ENDED" = 1 ] && [ "$LK_END_CODE" = 0 ] || status="FAILED (status $LK_STATUS, end '$LK_END_CODE')"
		line="$kind $i: kmod_blocks_from_db ${from:-?} kmod_blocks_translated ${tr:-?} share ${share}% fp_matches $(js "$out/stderr" kmod_fp_matches) placement_hits $(js "$out/stderr" kmod_placement_hits) packs_inflated $(js "$out/stderr" kmod_packs_inflated) pack_peak_bytes $(js "$out/stderr" kmod_pack_bytes_peak) rss_kb ${rss:-?} $ins; $status; load $(cut -d' ' -f1 /proc/loadavg)"
		echo "  $line"
		echo "$line" >>"$results"
		grep -hE 'template fingerprints|templates bound' "$out/stderr" | sed 's/^/    /'
	done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for kind in cold warm; do
	f() { grep "^$kind " "$results" | sed -n "s/.* $1 \([0-9.]*\).*/\1/p" | median; }
	echo "$kind (median of $runs): from_db $(f kmod_blocks_from_db), translated $(f kmod_blocks_translated), share $(f share)%, insmod round 1 $(f round1) ms, round 2 $(f round2) ms, rss $(f rss_kb) kB"
done
