#!/usr/bin/env bash
# Build a minimal Debian 12 root file system as an ext4 raw image, once, into
# a cache outside git (an explicit step: it downloads about 60 MB of Debian
# packages with debootstrap; tests/bench/debian-rootfs.sh calls it).
#
#   tests/tools/mk-debian-rootfs.sh [--rebuild]
#
# Leaves ${BTKERN_CACHE:-$HOME/.cache/btkern}/debian12-rootfs/root.img (1 GiB,
# sparse, label btkern-root) and prints its path on stdout.  The system:
# debootstrap --variant=minbase bookworm with systemd as init and udev;
# hostname btkern-guest; root's password "btkern" (a throw-away test image);
# / from /dev/vda (no fsck at boot: the image is built fresh and each VM gets
# its own copy).  systemd starts a serial getty on the console it is given
# (console=ttyS0).  Idempotent: an existing image with its stamp is reused
# without network; --rebuild makes it again.  Needs root (debootstrap).
set -u
cache=${BTKERN_CACHE:-$HOME/.cache/btkern}
dir=$cache/debian12-rootfs
img=$dir/root.img
stamp=$dir/stamp
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
die() {
	echo "mk-debian-rootfs: $*" >&2
	exit 1
}
[ "${1:-}" = --rebuild ] && rm -f "$stamp"
if [ -f "$stamp" ] && [ -f "$img" ]; then
	echo "$img"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot); run it as root"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: apt-get install e2fsprogs"
mkdir -p "$dir" || die "cannot create $dir"
tree=$(mktemp -d "$dir/tree.XXXXXX") || die "cannot create a directory in $dir"
trap 'rm -rf "$tree"' EXIT
echo "mk-debian-rootfs: debootstrap bookworm (minbase + systemd-sysv, udev) from $mirror" >&2
if ! debootstrap --variant=minbase --include=systemd-sysv,udev,procps,kmod \
	bookworm "$tree" "$mirror" >"$dir/debootstrap.log" 2>&1; then
	die "debootstrap failed: see $dir/debootstrap.log"
fi
echo btkern-guest >"$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 btkern-guest\n' >"$tree/etc/hosts"
printf '/dev/vda / ext4 rw,relatime 0 0\n' >"$tree/etc/fstab"
echo 'root:btkern' | chroot "$tree" chpasswd || die "chpasswd in the new tree failed"
# a motd line the script can look for after the login
echo 'btkern Debian 12 test image' >"$tree/etc/motd"
rm -f "$tree"/var/cache/apt/archives/*.deb
rm -f "$img.tmp"
truncate -s 1G "$img.tmp" || die "cannot create $img.tmp"
if ! mkfs.ext4 -q -F -L btkern-root -d "$tree" "$img.tmp" >"$dir/mkfs.log" 2>&1; then
	rm -f "$img.tmp"
	die "mkfs.ext4 -d failed: see $dir/mkfs.log"
fi
mv "$img.tmp" "$img"
{
	echo "debootstrap bookworm minbase $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	chroot "$tree" dpkg-query -W systemd linux-base 2>/dev/null | head -n 2
} >"$stamp"
echo "$img"
