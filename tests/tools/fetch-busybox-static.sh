#!/usr/bin/env bash
# Fetch Debian's statically linked busybox (package busybox-static) into a
# cache outside git, for the initramfs that tests/linux/lib.sh builds.
#
#   tests/tools/fetch-busybox-static.sh
#
# Downloads busybox-static with `apt-get download`, extracts bin/busybox with
# dpkg-deb, keeps it as ${BTKERN_CACHE:-$HOME/.cache/btkern}/busybox-static/
# busybox (with the package's "NAME VERSION" in busybox.package) and prints
# the binary's path on stdout.  Idempotent: an existing binary is reused
# without network.
set -euo pipefail

cache=${BTKERN_CACHE:-$HOME/.cache/btkern}
pkg=busybox-static
dir="$cache/busybox-static"
out="$dir/busybox"

if [ -x "$out" ] && [ -s "$dir/busybox.package" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$dir"

. "$(dirname "$0")/apt-download.sh"
apt_download fetch-busybox-static "$pkg" "$cache" "about 1 MB"
work=$APT_WORK
deb=$APT_DEB
cand=$APT_CAND
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./bin/busybox
if [ ! -x "$work/bin/busybox" ]; then
	echo "fetch-busybox-static: $deb holds no /bin/busybox" >&2
	exit 1
fi
# a dynamic busybox would not run in an initramfs without its libraries
if readelf -l "$work/bin/busybox" | grep -q 'INTERP'; then
	echo "fetch-busybox-static: $deb's /bin/busybox is not statically linked" >&2
	exit 1
fi
mv "$work/bin/busybox" "$out.tmp"
mv "$out.tmp" "$out"
echo "$pkg $cand" >"$dir/busybox.package"
echo "$out"
