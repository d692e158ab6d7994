#!/usr/bin/env bash
# The README's "Pre-translate and boot a Debian kernel" recipe, run as
# written (not part of make check: it downloads about 600 MB once into
# ~/.cache/btkern, then runs offline; the initramfs needs root).
#
#   tests/bench/readme-debian.sh [BUILD_DIR]      default build
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
exec "$repo/tests/integration/readme.sh" "${1:-$repo/build}" debian
