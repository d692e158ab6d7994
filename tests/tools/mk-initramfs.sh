#!/usr/bin/env bash
# A busybox initramfs for Debian's cloud kernel (the README's recipe), built
# with tests/linux/lib.sh: busybox (fetched once into ~/.cache/btkern), a
# link per applet, /proc, /sys, /dev, /tmp mounted by /init.
#
#   tests/tools/mk-initramfs.sh OUT.cpio [--abi ABI] [--module NAME]...
#                               [--switch-root DEV | COMMAND]
#
# With COMMAND, /init runs it with busybox sh and powers the machine off
# (btvm then exits 0, QEMU with -no-reboot too); without, /init starts an
# interactive shell on the console (`poweroff -f` ends the VM).  --module
# NAME adds NAME.ko and its dependencies from the kernel ABI's modules
# (fetched with tests/tools/fetch-debian-image.sh ABI, default 6.1.0-50) and
# loads them before COMMAND.  --switch-root DEV waits up to 10 s for the
# block device DEV (e.g. /dev/vda, after --module virtio_pci --module
# virtio_blk), mounts it (ext4) and starts its /sbin/init as PID 1 (a real
# root file system: tests/tools/mk-debian-rootfs.sh).  Needs root (mknod of
# /dev/console).
set -euo pipefail
usage() {
	sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ $# -ge 1 ] || usage
out=$1
shift
abi=6.1.0-50
mods=() root_dev=
while [ $# -gt 0 ]; do
	case $1 in
	--abi) abi=${2:?--abi needs a value}; shift 2 ;;
	--module) mods+=("${2:?--module needs a name}"); shift 2 ;;
	--switch-root) root_dev=${2:?--switch-root needs a device}; shift 2 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "mk-initramfs.sh: error: unknown option '$1'" >&2; exit 2 ;;
	*) break ;;
	esac
done
cmd=${*:-}
if [ -n "$root_dev" ] && [ -n "$cmd" ]; then
	echo "mk-initramfs.sh: error: --switch-root and a COMMAND exclude each other" >&2
	exit 2
fi

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
	if [ ${#mods[@]} -gt 0 ]; then
		# every module's load order, each .ko once (modules share dependencies)
		orders=$(printf ' /lib/modules/lk/%s.order' "${mods[@]}")
		echo "for m in \$(cat$orders | awk '!seen[\$0]++'); do"
		echo '	insmod "$m" || echo "insmod $m failed"'
		echo 'done'
	fi
	if [ -n "$root_dev" ]; then
		cat <<EOF
i=0
while [ ! -b $root_dev ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
[ -b $root_dev ] || { echo "init: no $root_dev"; poweroff -f; }
mkdir -p /newroot
mount -t ext4 -o rw $root_dev /newroot || { echo "init: cannot mount $root_dev"; poweroff -f; }
umount /tmp
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /sbin/init
EOF
	elif [ -n "$cmd" ]; then
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
