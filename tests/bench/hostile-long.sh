#!/usr/bin/env bash
# The long run of the hostile guest kernel fuzzer (docs/security.md
# "Hostile guest kernels"): new seeds for SECONDS (default 3600) with the
# full generator, no class excluded, then one summary line and one line per
# kind of finding.  Exit status 1 if there was a finding.
#
#   tests/bench/hostile-long.sh [BUILD_DIR] [SECONDS] [FIRST_SEED] [extra hostile-run.py args]
#
# e.g. tests/bench/hostile-long.sh build 600 1000000
# (the check step check-hostile-guest runs seeds 1..150 with the classes of
# the open findings excluded; this script starts elsewhere by default).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
secs=${2:-3600}
first=${3:-1000000}
shift $(($# < 3 ? $# : 3))
work=$(mktemp -d /tmp/hostile-long.XXXXXX)
trap 'rm -rf "$work"' EXIT
# never the user's database key
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config}
echo "hostile-long: $(nproc) CPUs, btvm $(git -C "$repo" rev-parse --short HEAD 2>/dev/null), ${secs} s from seed $first"
exec python3 "$repo/tests/hostile/hostile-run.py" --build "$build" --duration "$secs" \
	--start "$first" --jobs 2 --timeout 1 --mem 32M --keep "${HOSTILE_KEEP:-$work/keep}" "$@"
