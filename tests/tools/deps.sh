#!/usr/bin/env bash
# Install every build and test dependency with apt-get.  Idempotent: when all
# packages are present it only asks dpkg and returns at once.
set -euo pipefail

PKGS=(
	build-essential pkg-config make git
	libelf-dev zlib1g-dev # ELF reader (elfutils); zlib (the codec benchmark)
	libzstd-dev zstd     # database chunks (zstd: the tests change them with the command)
	xz-utils             # .ko.xz modules in the module-tree diff test
	liblz4-dev           # the codec benchmark (tests/bench/db-codec-bench.sh)
	liblzma-dev          # .ko.xz modules (kmod/)
	libdw-dev             # DWARF reader (elfutils): source files for pretrans diff
	libzydis-dev          # Zydis 4: decoder and encoder
	llvm-14-dev llvm-dev  # LLVM-C MC disassembler, the second decoder
	libsqlite3-dev sqlite3
	libcmocka-dev         # unit tests
	qemu-system-x86       # the reference machine for guests
	cpio                  # inspecting initrds in tests
	python3               # JSON and HTML checks of `pretrans diff`
	help2man man-db       # man pages from --help (make man, make install), rendered in check-install
	chromium              # the HTML report in a headless browser (check-diff-html)
	xxd                   # seeds the translator fuzzer's corpus
	clang clang-format libclang-rt-14-dev  # fuzzers (libFuzzer), style check
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
