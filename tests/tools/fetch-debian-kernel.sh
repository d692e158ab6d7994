#!/usr/bin/env bash
# Fetch the debug vmlinux of a Debian 12 cloud kernel into a cache outside git.
#
#   tests/tools/fetch-debian-kernel.sh [ABI]      ABI defaults to 6.1.0-50
#
# Downloads linux-image-ABI-cloud-amd64-dbg with `apt-get download`, extracts
# only /usr/lib/debug/boot/vmlinux-* with dpkg-deb, keeps it as
# ${BTKERN_CACHE:-$HOME/.cache/btkern}/vmlinux-ABI-cloud-amd64 and prints that
# path on stdout.  Idempotent: an existing vmlinux is reused without network.
set -euo pipefail

abi=${1:-6.1.0-50}
cache=${BTKERN_CACHE:-$HOME/.cache/btkern}
pkg="linux-image-${abi}-cloud-amd64-dbg"
out="$cache/vmlinux-${abi}-cloud-amd64"

if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"

. "$(dirname "$0")/apt-download.sh"
apt_download fetch-debian-kernel "$pkg" "$cache" "large: about 1 GB" '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-dbg$'
work=$APT_WORK
deb=$APT_DEB
# Extract only the vmlinux: dpkg-deb --fsys-tarfile | tar with a pattern.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/lib/debug/boot/vmlinux-*'
vm=$(ls "$work"/usr/lib/debug/boot/vmlinux-* | head -1)
if [ ! -s "$vm" ]; then
	echo "fetch-debian-kernel: $deb holds no /usr/lib/debug/boot/vmlinux-*" >&2
	exit 1
fi
mv "$vm" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
