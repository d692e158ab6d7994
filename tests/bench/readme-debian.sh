#!/usr/bin/env bash
# The README's "Pre-translate and boot a Debian kernel" and "Boot a real
# Debian 12 system" recipes, run as written (not part of make check: they
# download about 600 MB and a debootstrap of about 60 MB once into
# ~/.cache/btkern, then run offline; the initramfs and debootstrap need
# root).
#
#   tests/bench/readme-debian.sh [BUILD_DIR]      default build
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
"$repo/tests/integration/readme.sh" "${1:-$repo/build}" debian || exit 1
exec "$repo/tests/integration/readme.sh" "${1:-$repo/build}" debian-rootfs
