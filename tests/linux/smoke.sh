#!/usr/bin/env bash
# Smoke check of tests/linux/lib.sh (an explicit step, not in `make check`:
# it downloads Debian's kernel): builds a busybox initramfs that loads a
# module (vfat and its dependency fat) and unloads it, boots it under QEMU
# TCG (the bzImage) and btvm (the vmlinux of the same build), and fails
# unless both print the same marker lines and reach the end marker.
#
#   tests/linux/smoke.sh [BTVM_ARG...]       e.g. --no-sandbox
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/linux/lib.sh
. "$here/lib.sh"
lk_fetch || exit 1
work=$(mktemp -d /tmp/lk-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/init" <<'IEOF'
#!/bin/sh
. /lib/lk.sh
lk_setup
lk_mark hello "$(uname -r)"
lk_insmod vfat && lk_mark module loaded "$(lsmod | grep -c '^v*fat ')"
lk_rmmod vfat && lk_mark module unloaded "$(lsmod | grep -c '^v*fat ')"
lk_end 0
IEOF
lk_initramfs_new "$work/root" "$work/init" || exit 1
lk_initramfs_add_modules "$work/root" vfat || exit 1
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1
fails=0
for kind in qemu btvm; do
	extra=()
	[ "$kind" = btvm ] && extra=("$@")
	lk_run_vm "$kind" "$work/$kind" "$work/initrd.cpio" "$LK_CMDLINE" 512M 120 "${extra[@]}"
	echo "smoke: $kind: status $LK_STATUS, end marker $LK_ENDED (code '$LK_END_CODE'), $LK_WALL_MS ms"
	grep -ao '@@LK .*' "$work/$kind/console.txt" >"$work/$kind.marks"
	if [ "$LK_ENDED" != 1 ] || [ "$LK_END_CODE" != 0 ]; then
		echo "smoke: FAIL: $kind did not reach the end marker"
		tail -n 5 "$work/$kind/console.txt" "$work/$kind/stderr"
		fails=$((fails + 1))
	fi
done
want="@@LK hello $LK_RELEASE
@@LK module loaded 2
@@LK module unloaded 0
@@LK end 0"
for kind in qemu btvm; do
	if [ "$(cat "$work/$kind.marks")" != "$want" ]; then
		echo "smoke: FAIL: $kind's markers differ from the expected ones:"
		diff <(echo "$want") "$work/$kind.marks"
		fails=$((fails + 1))
	fi
done
echo "smoke: $((fails == 0 ? 1 : 0)) passed, $fails failed"
[ "$fails" = 0 ]
