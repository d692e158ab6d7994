#!/usr/bin/env bash
# `make demo`: boot the bundled test guest (kernel + initrd with the user
# tests, the test module and the benchmark) with test=all bench=1, show its
# console as it runs and finish with a one-line verdict.
#
#   tests/integration/demo.sh BUILD_DIR
#
# Today the machine is QEMU TCG (the reference); when the VMM can boot the
# guest, replace the gu_qemu_run call below by a btvm run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/qemu-lib.sh"

build=${1:?usage: demo.sh BUILD_DIR}
GU_KERNEL="$build/guests/kernel.elf"
initrd="$build/guests/initrd.cpio"
work=$(mktemp -d /tmp/demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "demo: booting $GU_KERNEL with $initrd under $QEMU (TCG), test=all bench=1"
echo "------------------------------------------------------------------------"
GU_TEE=1 gu_qemu_run "$work" "console=ttyS0 test=all bench=1" "$initrd"
echo "------------------------------------------------------------------------"

summary=$(grep -E '^SUMMARY: ' "$work/console.raw" | tail -n 1)
nresults=$(grep -c '^RESULT ' "$work/console.raw")
if [ "$GU_STATUS" = 1 ] && [ -n "$summary" ] && ! grep -q '^not ok' "$work/console.raw"; then
	echo "demo: PASS: guest booted and ran under QEMU in ${GU_SECONDS}s: ${summary#SUMMARY: }, $nresults benchmark results"
	exit 0
fi
case "$GU_STATUS" in
124 | 137) why="timed out after ${GU_TIMEOUT}s" ;;
*) why="QEMU exit status $GU_STATUS${summary:+, $summary}" ;;
esac
if [ -s "$work/qemu.stderr" ]; then
	echo "demo: qemu stderr:"
	cat "$work/qemu.stderr"
fi
echo "demo: FAIL: $why"
exit 1
