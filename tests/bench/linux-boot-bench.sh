#!/usr/bin/env bash
# Debian 12's own kernel booted to its first user program (benchmark, not a
# test), in one go: btvm cold (no database), btvm warm from a `pretrans
# build` database, btvm warm after one --learn boot (its boot profile), and
# QEMU TCG on the bzImage of the same build (tests/linux/lib.sh fetches
# both and checks they are one build).  The initramfs is busybox with an
# /init that prints a marker and powers off; the figure is the host's wall
# time from starting the VMM to the marker's arrival on the console.
#
# Per mode: the median of N runs (runs interleaved, failed boots counted as
# slower than every success, never dropped), and for btvm the getting-code
# time (the "translate" + "database" phases of --stats, which also count
# guest user code translated in the VMM and
# the few blocks after the marker) and its share of the wall time, the
# "database" phase alone ("of it db": looking blocks up in the database,
# checking their guest bytes and installing them), the time
# the database's packs took to load before the boot ("boot profile ...
# loaded in"), the database size, and the stale / translated / from-database
# block counts of the median run, with the user blocks translated ("user
# tr") and taken from the database's user templates ("user db", and the
# time they took, "user db ms": user_db.ns of --stats=json, also printed
# for every learned run).  Each VM is stopped by its PID
# (tests/linux/lib.sh).  Not pinned unless LK_PIN is set (e.g.
# LK_PIN="taskset -c 1"); the load average is printed.
#
# btvm runs sandboxed, as users run it (LBB_SANDBOX=0 runs it with
# --no-sandbox; the sandbox used to kill it through glibc's qsort calling
# sysinfo(2), fixed since: docs/linux-bench.md "Findings").
#
# With BASE_DIR (another build, e.g. of the commit before a change), the
# same run also boots that build cold, warm from its own `pretrans build`
# database and warm after its own --learn boot, interleaved with the
# others: an A/B under the same load.
#
#   tests/bench/linux-boot-bench.sh [BUILD_DIR] [N] [ABI] [BASE_DIR]   (ABI default 6.1.0-50)
set -u
build=${1:-build}
n=${2:-3}
export LK_ABI=${3:-6.1.0-50}
base=${4:-}
cd "$(dirname "$0")/../.." || exit 1
. tests/linux/lib.sh
export LK_GRACE=${LK_GRACE:-1}
for b in "$build" $base; do
	for f in "$b/bin/btvm" "$b/bin/pretrans"; do
		[ -x "$f" ] || { echo "linux-boot-bench: $f missing: make BUILD=$b" >&2; exit 1; }
	done
done
# absolute paths: the VMs run from other directories (a BUILD_DIR like
# /tmp/x used to become $PWD//tmp/x and every btvm boot failed)
build=$(cd "$build" && pwd)
[ -n "$base" ] && base=$(cd "$base" && pwd)
lk_fetch || exit 1
lk_workdir linux-boot-bench || exit 1
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config} # never the user's key

cat >"$work/init" <<'EOF'
#!/bin/sh
. /lib/lk.sh
lk_mark user
lk_end 0
EOF
lk_initramfs_new "$work/rootfs" "$work/init" && lk_initramfs_pack "$work/rootfs" "$work/initrd.cpio" ||
	exit 1
cmdline="$LK_CMDLINE"

# DATABASE PREFIX BUILD: pretrans build into $work/PREFIXbuild.tcdb (and a
# copy PREFIXlearn.tcdb); prints its time in ms
make_db() {
	local s
	s=$(date +%s%N)
	"$2/bin/pretrans" build "$LK_VMLINUX" -o "$work/$1build.tcdb" >"$work/$1pretrans.log" 2>&1 || {
		cat "$work/$1pretrans.log" >&2
		return 1
	}
	echo $((($(date +%s%N) - s) / 1000000))
	cp "$work/$1build.tcdb" "$work/$1learn.tcdb"
}
build_ms=$(make_db "" "$build") || exit 1
[ -n "$base" ] && { base_ms=$(make_db base- "$base") || exit 1; }

# ONE boot: MODE RUN -> a line "ms getting_ms load_ms from_db stale translated"
# (ms is FAIL when the marker never came)
# (MODE is cold, build, learn, learned or qemu, or base-cold, base-build,
# base-learn, base-learned for BASE_DIR)
boot() {
	local mode=$1 k=$2 out=$work/$1.$2 args=() kind=btvm pre=
	export LK_BTVM=$build/bin/btvm
	case $mode in
	base-*)
		pre=base-
		LK_BTVM=$base/bin/btvm
		;;
	esac
	case ${mode#base-} in
	cold) ;;
	build) args=(--tcdb "$work/${pre}build.tcdb") ;;
	learn) args=(--tcdb "$work/${pre}learn.tcdb" --learn) ;;
	learned) args=(--tcdb "$work/${pre}learn.tcdb") ;;
	qemu) kind=qemu ;;
	esac
	[ $kind = btvm ] && args+=(--stats=json --log db:info)
	[ $kind = btvm ] && [ "${LBB_SANDBOX:-1}" = 0 ] && args+=(--no-sandbox)
	# the --learn boot writes its blocks after the marker: give it time to
	# power off by itself (a SIGKILL mid-commit would leave a hot journal)
	local grace=$LK_GRACE
	[ "${mode#base-}" = learn ] && grace=60
	LK_GRACE=$grace lk_run_vm $kind "$out" "$work/initrd.cpio" "$cmdline" 512M 120 "${args[@]}" \
		>/dev/null 2>&1
	local at ms=FAIL
	at=$(lk_stamp_ms "$out" user)
	[ -n "$at" ] && ms=$((at - LK_START_MS))
	if [ $kind = qemu ]; then
		echo "$ms - - - - - - - -"
		return
	fi
	local j num
	j=$(grep -a '^{"schema":"btkern-btvm-stats/' "$out/stderr" | tail -n 1)
	num() { echo "$j" | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
	local tr db load
	tr=$(num translate)
	db=$(num database)
	# every pack loaded (the boot profile, the predicted versions): their sum
	load=$(grep -ao 'loaded in [0-9.]* ms' "$out/stderr" | awk '{ s += $3 } END { if (NR) print s }')
	# user blocks translated, and from the database's user templates (0
	# for a build without them)
	# the time those user blocks took (user_db.ns, in the database phase)
	local uns
	uns=$(echo "$j" | grep -o '"user_db":{[^}]*}' | grep -o '"ns":[0-9]*' | cut -d: -f2)
	echo "$ms $(((${tr:-0} + ${db:-0}) / 1000000)) ${load:-0} $(num from_db) $(num db_stale)" \
		"$(num translated) $((${db:-0} / 1000000)) $(num blocks_translated)" \
		"$(num blocks_from_db) $(awk -v n="${uns:-0}" 'BEGIN { printf "%.1f", n / 1e6 }')"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
modes="cold build learned qemu"
[ -n "$base" ] && modes="base-cold base-build base-learned $modes"
boot learn 0 >"$work/learn.line"
[ -n "$base" ] && boot base-learn 0 >"$work/base-learn.line"
for k in $(seq "$n"); do
	for mode in $modes; do
		boot $mode "$k" >>"$work/$mode.lines"
	done
done

# the run with the median wall time (failed runs sort last)
median_line() {
	sed 's/^FAIL /999999999 /' "$1" | sort -n -k1,1 |
		awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' | sed 's/^999999999 /FAIL /'
}
failed() { grep -c '^FAIL ' "$1" || true; }

echo "Debian $LK_ABI under btvm and QEMU TCG: wall time to the first user program (/init), median of $n"
echo "  pretrans build: $build_ms ms, database $(du -m "$work/build.tcdb" | cut -f1) MB;" \
	"after one --learn boot: $(du -m "$work/learn.tcdb" | cut -f1) MB" \
	"(that boot: $(cut -d' ' -f1 "$work/learn.line") ms)"
[ -n "$base" ] && echo "  base $base: pretrans build $base_ms ms, database" \
	"$(du -m "$work/base-build.tcdb" | cut -f1) MB; after one --learn boot:" \
	"$(du -m "$work/base-learn.tcdb" | cut -f1) MB (that boot: $(cut -d' ' -f1 "$work/base-learn.line") ms)"
echo "  (${LK_PIN:+pinned: $LK_PIN}${LK_PIN:-not pinned}; failed boots count in the medians; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
printf "  %-30s %9s %7s %13s %7s %9s %9s %9s %7s %10s %9s %9s %11s\n" mode wall failed getting-code share "of it db" packs \
	from-db stale translated "user tr" "user db" "user db ms"
for mode in $modes; do
	read -r ms get load fromdb stale tr dbms utr udb udbms <<<"$(median_line "$work/$mode.lines")"
	share=-
	[ "$ms" != FAIL ] && [ "$get" != - ] && share=$(awk -v g="$get" -v w="$ms" 'BEGIN { printf "%.0f%%", 100 * g / w }')
	case ${mode#base-} in
	cold) name="btvm cold" ;;
	build) name="btvm warm (build)" ;;
	learned) name="btvm warm (after --learn)" ;;
	qemu) name="QEMU TCG (bzImage)" ;;
	esac
	[ "$mode" != "${mode#base-}" ] && name="base: $name"
	printf "  %-30s %9s %7s %13s %7s %9s %9s %9s %7s %10s %9s %9s %11s\n" "$name" "${ms} ms" \
		"$(failed "$work/$mode.lines")/$n" "${get} ms" "$share" "${dbms} ms" "${load} ms" "$fromdb" \
		"$stale" "$tr" "$utr" "${udb:-0}" "${udbms:--} ms"
done
# the user templates' time of every run, not only the median's (it is noisy)
for mode in $modes; do
	[ "${mode#base-}" = learned ] || continue
	echo "  $mode: user db ms of each run: $(awk '{ printf "%s%s", sep, $10; sep = ", " }' "$work/$mode.lines")"
done
