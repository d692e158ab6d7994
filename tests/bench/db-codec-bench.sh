#!/usr/bin/env bash
# The codec of the translation database's chunks, measured (benchmark, not a
# test): builds tests/bench/db_codec_bench.c with the host's zlib, LZ4 and
# zstd (tests/tools/deps.sh installs them) and runs it on a database's chunks:
# stored size, ratio, compression and single-thread decompression speed of
# zlib 1/6, LZ4, LZ4HC 9 and zstd 1/3/9/15.  Not pinned; the machine's load
# is printed with the figures.
#
#   tests/bench/db-codec-bench.sh DB [MAX_CHUNKS]
set -eu
db=${1:?usage: db-codec-bench.sh DB [MAX_CHUNKS]}
cd "$(dirname "$0")/../.."
bin=$(mktemp /tmp/db-codec-bench.XXXXXX)
trap 'rm -f "$bin"' EXIT
cc -O2 -o "$bin" tests/bench/db_codec_bench.c -lsqlite3 -lz -llz4 -lzstd
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "$db" "${2:-0}"
