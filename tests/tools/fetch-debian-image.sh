#!/usr/bin/env bash
# Fetch the bootable bzImage and the modules of a Debian 12 cloud kernel into
# a cache outside git: the same build as the debug vmlinux that
# fetch-debian-kernel.sh fetches, so QEMU boots the bzImage, btvm the vmlinux,
# and both load the same .ko files.
#
#   tests/tools/fetch-debian-image.sh [ABI]      ABI defaults to 6.1.0-50
#
# Downloads linux-image-ABI-cloud-amd64-unsigned with `apt-get download`,
# extracts it with dpkg-deb into ${BTKERN_CACHE:-$HOME/.cache/btkern}/
# linux-image-ABI-cloud-amd64/ and prints that directory on stdout.  It holds
#   vmlinuz                 the bzImage (boot/vmlinuz-ABI-cloud-amd64)
#   config, System.map      the build's config and symbol map
#   modules/                lib/modules/ABI-cloud-amd64 (.ko files, not
#                           compressed; no modules.dep: see lk_module_deps
#                           in tests/linux/lib.sh)
#   package                 "NAME VERSION" of the .deb it came from
# Idempotent: an existing directory is reused without network (about 110 MB;
# the .deb is 26 MB).
set -euo pipefail

abi=${1:-6.1.0-50}
cache=${BTKERN_CACHE:-$HOME/.cache/btkern}
pkg="linux-image-${abi}-cloud-amd64-unsigned"
out="$cache/linux-image-${abi}-cloud-amd64"

if [ -s "$out/vmlinuz" ] && [ -s "$out/package" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"

. "$(dirname "$0")/apt-download.sh"
apt_download fetch-debian-image "$pkg" "$cache" "about 26 MB" '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-unsigned$'
work=$APT_WORK
deb=$APT_DEB
cand=$APT_CAND
mkdir "$work/x"
dpkg-deb -x "$deb" "$work/x"
kdir="$work/x/lib/modules/${abi}-cloud-amd64"
for f in "$work/x/boot/vmlinuz-${abi}-cloud-amd64" "$kdir/kernel"; do
	if [ ! -e "$f" ]; then
		echo "fetch-debian-image: $deb holds no ${f#"$work"/x}" >&2
		exit 1
	fi
done
mkdir "$work/out"
mv "$work/x/boot/vmlinuz-${abi}-cloud-amd64" "$work/out/vmlinuz"
mv "$work/x/boot/config-${abi}-cloud-amd64" "$work/out/config"
mv "$work/x/boot/System.map-${abi}-cloud-amd64" "$work/out/System.map"
mv "$kdir" "$work/out/modules"
echo "$pkg $cand" >"$work/out/package"
rm -rf "$out"
mv "$work/out" "$out"
echo "$out"
