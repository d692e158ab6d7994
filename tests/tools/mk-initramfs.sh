#!/usr/bin/env bash
# A busybox initramfs for Debian's cloud kernel (the README's recipe), built
# with tests/linux/lib.sh: busybox (fetched once into ~/.cache/btkern), a
# link per applet, /proc, /sys, /dev, /tmp mounted by /init.
#
#   tests/tools/mk-initramfs.sh OUT.cpio [--abi ABI] [--module NAME]... [COMMAND]
#
# With COMMAND, /init runs it with busybox sh and powers the machine off
# (btvm then exits 0, QEMU with -no-reboot too); without, /init starts an
# interactive shell on the console (`poweroff -f` ends the VM).  --module
# NAME adds NAME.ko and its dependencies from the kernel ABI's modules
# (fetched with tests/tools/fetch-debian-image.sh ABI, default 6.1.0-50) and
# loads them before COMMAND.  Needs root (mknod of /dev/console).
set -euo pipefail
usage() {
	sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ $# -ge 1 ] || usage
out=$1
shift
abi=6.1.0-50
mods=()
while [ $# -gt 0 ]; do
	case $1 in
	--abi) abi=${2:?--abi needs a value}; shift 2 ;;
	--module) mods+=("${2:?--module needs a name}"); shift 2 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "mk-initramfs.sh: error: unknown option '$1'" >&2; exit 2 ;;
	*) break ;;
	esac
done
cmd=${*:-}

LK_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LK_ABI=$abi
# shellcheck source=tests/linux/lib.sh
. "$LK_ROOT/tests/linux/lib.sh"
LK_BUSYBOX=$("$LK_ROOT/tests/tools/fetch-busybox-static.sh")
if [ ${#mods[@]} -gt 0 ]; then
	img=$("$LK_ROOT/tests/tools/fetch-debian-image.sh" "$abi")
	LK_MODDIR=$img/modules
	LK_RELEASE=$abi-cloud-amd64
fi

work=$(mktemp -d /tmp/mk-initramfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
	echo '#!/bin/sh'
	echo '. /lib/lk.sh'
	echo 'lk_setup'
	for m in ${mods[@]+"${mods[@]}"}; do echo "lk_insmod $m || echo 'insmod $m failed'"; done
	if [ -n "$cmd" ]; then
		printf '%s\n' "$cmd"
		echo 'poweroff -f'
	else
		echo 'echo "busybox shell: poweroff -f ends the VM"'
		echo 'exec setsid cttyhack sh'
	fi
} >"$work/init"
lk_initramfs_new "$work/root" "$work/init"
[ ${#mods[@]} -eq 0 ] || lk_initramfs_add_modules "$work/root" "${mods[@]}"
lk_initramfs_pack "$work/root" "$out"
echo "$out"
