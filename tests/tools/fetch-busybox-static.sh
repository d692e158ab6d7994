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

SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
echo "fetch-busybox-static: apt-get update" >&2
$SUDO apt-get update -qq >&2

cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
	echo "fetch-busybox-static: package $pkg is not available (apt-get update, check sources.list)" >&2
	exit 1
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-busybox-static: downloading $pkg $cand (about 1 MB)" >&2
(cd "$work" && apt-get download -q "$pkg" >&2)
deb=$(ls "$work"/*.deb)
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
