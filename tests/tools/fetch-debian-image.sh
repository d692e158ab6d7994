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

SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
echo "fetch-debian-image: apt-get update" >&2
$SUDO apt-get update -qq >&2

cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
	echo "fetch-debian-image: package $pkg is not available; available cloud kernels:" >&2
	apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-unsigned$' 2>/dev/null |
		awk '{print "  " $1}' >&2
	exit 1
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-debian-image: downloading $pkg $cand (about 26 MB)" >&2
(cd "$work" && apt-get download -q "$pkg" >&2)
deb=$(ls "$work"/*.deb)
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
