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

SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
echo "fetch-debian-kernel: apt-get update" >&2
$SUDO apt-get update -qq >&2

cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
	echo "fetch-debian-kernel: package $pkg is not available; available cloud -dbg kernels:" >&2
	apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-dbg$' 2>/dev/null |
		awk '{print "  " $1}' >&2
	exit 1
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-debian-kernel: downloading $pkg $cand (large: about 1 GB)" >&2
(cd "$work" && apt-get download -q "$pkg" >&2)
deb=$(ls "$work"/*.deb)
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
