#!/usr/bin/env bash
# `make demo`: the main job end to end on the bundled test guest.
#   1. pretrans build: pre-translate the guest kernel into a translation
#      database (sqlite);
#   2. btvm run: boot the guest from that warm cache in the user-space VMM,
#      with every kernel and user test and the benchmark (test=all bench=1);
#      guest user programs run in the default adaptive user mode, which
#      runs every one of them exactly (translated while it crosses into the
#      kernel often or needs guest state the host lacks, directly in
#      ptrace'd stubs while it computes; docs/user-mode.md);
#   3. a one-line verdict, and what ran from the database.
#
#   tests/integration/demo.sh BUILD_DIR
set -u
build=${1:?usage: demo.sh BUILD_DIR}
kernel="$build/guests/kernel.elf"
initrd="$build/guests/initrd.cpio"
work=$(mktemp -d /tmp/demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
db="$work/kernel.tcdb"
cmdline="console=ttyS0 test=all bench=1"

echo "demo: 1/2 pretrans build $kernel -o kernel.tcdb"
if ! "$build/bin/pretrans" build "$kernel" -o "$db"; then
	echo "demo: FAIL: pretrans build failed"
	exit 1
fi
dd if=/dev/zero of="$work/disk.img" bs=1024 count=1024 status=none
echo "demo: 2/2 btvm run --kernel kernel.elf --tcdb kernel.tcdb --initrd initrd.cpio --disk disk.img --cmdline '$cmdline'"
echo "------------------------------------------------------------------------"
start=$SECONDS
"$build/bin/btvm" run --kernel "$kernel" --tcdb "$db" --initrd "$initrd" \
	--disk "$work/disk.img" --cmdline "$cmdline" --timeout 120 \
	--stats </dev/null 2>"$work/stderr" | tee "$work/console.raw"
status=${PIPESTATUS[0]}
echo "------------------------------------------------------------------------"
grep '^btvm: blocks:' "$work/stderr" | sed 's/^btvm: /demo: /'

summary=$(grep -E '^SUMMARY: ' "$work/console.raw" | tail -n 1)
nresults=$(grep -c '^RESULT ' "$work/console.raw")
if [ "$status" = 1 ] && [ -n "$summary" ] && ! grep -q '^not ok' "$work/console.raw"; then
	echo "demo: PASS: the guest booted under btvm from its pre-translated kernel in $((SECONDS - start)) s: ${summary#SUMMARY: }, $nresults benchmark results"
	exit 0
fi
echo "demo: btvm stderr:"
tail -n 20 "$work/stderr"
echo "demo: FAIL: btvm exit status $status${summary:+, $summary}"
exit 1
