#!/usr/bin/env bash
# Boot the test guest kernel under QEMU (TCG) through BOTH entries with the
# same initrd and command line: PVH (qemu -kernel kernel.elf) and the Linux
# 64-bit boot protocol (the multiboot stub loads kernel.elf and jumps to
# e_entry, as btvm does).  Each must exit through isa-debug-exit with 0
# (QEMU status 1), print "SUMMARY: N passed, 0 failed" with N > 0, and both
# must print the same TAP result lines.  Then the fatal paths: crash=stack,
# crash=null and crash=ud2 must each print "[kernel] PANIC:" and exit with 1
# (QEMU status 3) instead of hanging or triple-faulting.  The programs QEMU
# cannot run as hardware does (guests/user/tests/qemu-lacks.txt, e.g. #AC)
# are skipped, as in tests/integration/qemu-boot.sh.
# usage: boot-check.sh BUILD_DIR
set -u
build=${1:?usage: boot-check.sh BUILD_DIR}
kernel=$build/guests/kernel.elf
stub=$build/guests/kernel-bootstub.bin
initrd=$build/guests/initrd.cpio
for f in "$kernel" "$stub" "$initrd"; do
	[ -f "$f" ] || { echo "boot-check: missing $f" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "boot-check: qemu-system-x86_64 not installed" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
qemu_lacks=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \
	"$repo/guests/user/tests/qemu-lacks.txt" | tr -d ' \t' | paste -sd, -)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
run() { # name, qemu -kernel/-initrd arguments...
	local name=$1
	shift
	qemu "$name" "console=ttyS0 test=all${qemu_lacks:+ skip=$qemu_lacks}" "$@"
	local rc=$?
	tr -d '\r' <"$tmp/$name.out" | grep -E '^(ok|not ok) ' >"$tmp/$name.tap"
	if [ $rc -ne 1 ] || ! grep -Eq '^SUMMARY: [1-9][0-9]* passed, 0 failed' "$tmp/$name.out"; then
		echo "boot-check: $name boot failed (qemu status $rc); output:" >&2
		cat "$tmp/$name.out" >&2
		status=1
	else
		echo "  OK      $name boot: $(grep '^SUMMARY' "$tmp/$name.out" | tr -d '\r')"
	fi
}
qemu() { # name, append, qemu arguments...; output in $tmp/name.out
	local name=$1 append=$2
	shift 2
	truncate -s 1M "$tmp/disk-$name.img"
	timeout 60 qemu-system-x86_64 -accel tcg -machine pc -cpu max -m 256M -nodefaults \
		-display none -no-reboot -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 "$@" \
		-append "$append" \
		-drive file="$tmp/disk-$name.img",format=raw,if=ide,index=0 >"$tmp/$name.out" 2>&1
}
run pvh -kernel "$kernel" -initrd "$initrd"
run linux64 -kernel "$stub" -initrd "$kernel,$initrd"
if ! diff -u "$tmp/pvh.tap" "$tmp/linux64.tap"; then
	echo "boot-check: the two entries gave different TAP results" >&2
	status=1
fi
for kind in stack null ud2; do
	qemu "crash-$kind" "console=ttyS0 test=none crash=$kind" -kernel "$kernel"
	rc=$?
	if [ $rc -ne 3 ] || ! grep -q '^\[kernel\] PANIC: ' "$tmp/crash-$kind.out"; then
		echo "boot-check: crash=$kind: want a PANIC line and qemu status 3, got $rc:" >&2
		cat "$tmp/crash-$kind.out" >&2
		status=1
	else
		echo "  OK      crash=$kind: $(grep '^\[kernel\] PANIC' "$tmp/crash-$kind.out" | tr -d '\r')"
	fi
done
exit $status
