#!/usr/bin/env bash
# What getting code from a translation database costs without the VM
# (benchmark, not a test): tests/bench/db_load_bench.c, linked with this
# tree's db/ library, opens DB, times tcdb_load_index (start-index and
# boot-profile packs) and N look-ups.  Not pinned; the load average is
# printed with the figures.
#
#   tests/bench/db-load-bench.sh [BUILD_DIR] DB [N]
set -eu
build=${1:-build}
db=${2:?usage: db-load-bench.sh [BUILD_DIR] DB [N]}
cd "$(dirname "$0")/../.."
bin=$(mktemp /tmp/db-load-bench.XXXXXX)
trap 'rm -f "$bin"' EXIT
cc -O2 -I. $(pkg-config --cflags sqlite3) -o "$bin" tests/bench/db_load_bench.c \
	"$build/libtcdb.a" "$build/libbtbase.a" -lsqlite3 -lzstd -llz4 -lpthread
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "$db" "${3:-60000}"
