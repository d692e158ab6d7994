#!/usr/bin/env bash
# btvm benchmark (not a test): boots the test guest's kernel self-tests
# (test=kernel, with the initrd so every test runs) N times each way and
# prints medians and ratios from the same run:
#   - wall time to the end of the self-tests: btvm cold, btvm warm
#     (database from `pretrans build`), QEMU TCG;
#   - the share of btvm's time spent getting code (translating, or reading
#     and checking database blocks), cold vs warm;
#   - the dynamic translation rate (blocks/s and guest bytes/s);
#   - translated kernel code speed: iterations of the guest's timer_loop
#     busy loop in 20 timer ticks (a pure kernel-mode compute loop), btvm
#     vs QEMU TCG.
#
#   tests/bench/btvm-bench.sh [BUILD_DIR] [N]
set -u
build=${1:-build}
n=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/qemu-lib.sh"
btvm=$build/bin/btvm
GU_KERNEL=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
for f in "$btvm" "$build/bin/pretrans" "$GU_KERNEL" "$initrd"; do
	[ -e "$f" ] || { echo "btvm-bench: $f missing: make BUILD=$build" >&2; exit 1; }
done
work=$(mktemp -d /tmp/btvm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/bin/pretrans" build "$GU_KERNEL" -o "$work/k.tcdb" >/dev/null 2>&1 || exit 1
cmdline="console=ttyS0 test=kernel"

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
num() { grep -o "\"$2\":[0-9.]*" "$1" | head -n 1 | cut -d: -f2; }
iters() { sed -nE 's/^# timer_loop: 20 ticks in ([0-9]+) iterations/\1/p' "$1"; }

run_btvm() { # MODE I
	local mode=$1 i=$2 extra=()
	[ "$mode" = warm ] && extra=(--tcdb "$work/k.tcdb")
	dd if=/dev/zero of="$work/disk.img" bs=1024 count=1024 status=none
	local s e
	s=$(date +%s%N)
	"$btvm" run --kernel "$GU_KERNEL" --initrd "$initrd" --disk "$work/disk.img" \
		--cmdline "$cmdline" --stats=json "${extra[@]}" </dev/null \
		>"$work/$mode.$i.out" 2>"$work/$mode.$i.json"
	local st=$?
	e=$(date +%s%N)
	[ $st = 1 ] || echo "btvm-bench: $mode run $i exited $st" >&2
	echo $(((e - s) / 1000000)) >>"$work/$mode.ms"
	local tr db
	tr=$(num "$work/$mode.$i.json" translate)
	db=$(num "$work/$mode.$i.json" database)
	echo $(((tr + db) / 1000)) >>"$work/$mode.getcode_us"
	iters "$work/$mode.$i.out" >>"$work/$mode.iters"
	num "$work/$mode.$i.json" translated >>"$work/$mode.blocks"
	num "$work/$mode.$i.json" from_db >>"$work/$mode.fromdb"
}

for i in $(seq "$n"); do
	run_btvm cold "$i"
	run_btvm warm "$i"
	mkdir -p "$work/q$i"
	s=$(date +%s%N)
	gu_qemu_run "$work/q$i" "$cmdline" "$initrd"
	e=$(date +%s%N)
	[ "$GU_STATUS" = 1 ] || echo "btvm-bench: qemu run $i exited $GU_STATUS" >&2
	echo $(((e - s) / 1000000)) >>"$work/qemu.ms"
	iters "$work/q$i/console.raw" >>"$work/qemu.iters"
done

cold_ms=$(median <"$work/cold.ms")
warm_ms=$(median <"$work/warm.ms")
qemu_ms=$(median <"$work/qemu.ms")
cold_code=$(median <"$work/cold.getcode_us")
warm_code=$(median <"$work/warm.getcode_us")
cold_blocks=$(median <"$work/cold.blocks")
warm_blocks=$(median <"$work/warm.blocks")
warm_fromdb=$(median <"$work/warm.fromdb")
btvm_iters=$(median <"$work/cold.iters")
qemu_iters=$(median <"$work/qemu.iters")
tr_ns=$(num "$work/cold.1.json" translate)
tr_blocks=$(num "$work/cold.1.json" translated)

echo "btvm benchmark: test guest, $cmdline, initrd; median of $n runs each"
printf '  wall to end of self-tests:  btvm cold %d ms, btvm warm %d ms, QEMU TCG %d ms\n' \
	"$cold_ms" "$warm_ms" "$qemu_ms"
awk -v c="$cold_ms" -v w="$warm_ms" -v q="$qemu_ms" 'BEGIN {
	printf "  ratios: warm/cold %.2f, btvm cold/QEMU %.2f, btvm warm/QEMU %.2f\n", w / c, c / q, w / q }'
awk -v cc="$cold_code" -v wc="$warm_code" -v c="$cold_ms" -v w="$warm_ms" 'BEGIN {
	printf "  getting code (translate + database): cold %.1f ms (%.1f%% of the boot), warm %.1f ms (%.1f%%); warm/cold %.2f\n",
		cc / 1000, cc / 10 / c, wc / 1000, wc / 10 / w, (cc ? wc / cc : 0) }'
printf '  blocks: cold translated %d; warm took %d from the database and translated %d\n' \
	"$cold_blocks" "$warm_fromdb" "$warm_blocks"
awk -v n="$tr_ns" -v b="$tr_blocks" 'BEGIN {
	printf "  dynamic translation rate: %.0f blocks/s (%.1f us per block)\n", b * 1e9 / n, n / 1e3 / b }'
awk -v b="$btvm_iters" -v q="$qemu_iters" 'BEGIN {
	printf "  kernel compute (timer_loop iterations in 20 ticks): btvm %d, QEMU %d: btvm/QEMU %.2f\n", b, q, b / q }'
