#!/usr/bin/env bash
# The predicted boot-time patching (pretrans/kpatch) checked against a real
# boot of Debian's kernel (benchmark-style check, not part of make check: it
# needs the cached kernel).  Builds a database with `pretrans build`, boots
# once with --learn into a copy of it (the boot profile then holds every
# block version the boot ran: start, length, guest-bytes hash), and runs
# `pretrans kpatch IMAGE --check DB`, which sorts every version into
# unchanged / predicted exactly / patched but not predicted (by the kind of
# patch site it covers).  Then one warm boot from the build database without
# learning prints its from-database / predicted / stale / translated counts.
#
#   tests/bench/kpatch-check.sh [BUILD_DIR] [ABI]   (ABI default 6.1.0-50)
set -u
build=${1:-build}
export LK_ABI=${2:-6.1.0-50}
cd "$(dirname "$0")/../.." || exit 1
case $build in /*) ;; *) build=$PWD/$build ;; esac
. tests/linux/lib.sh
export LK_BTVM=$build/bin/btvm
pretrans=$build/bin/pretrans
for f in "$LK_BTVM" "$pretrans"; do
	[ -x "$f" ] || { echo "kpatch-check: $f missing: make BUILD=$build" >&2; exit 1; }
done
lk_fetch || exit 1
work=$(mktemp -d /tmp/kpatch-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME=$work/config # never the user's key

cat >"$work/init" <<'EOI'
#!/bin/sh
. /lib/lk.sh
lk_mark user
lk_end 0
EOI
lk_initramfs_new "$work/rootfs" "$work/init" && lk_initramfs_pack "$work/rootfs" "$work/initrd.cpio" ||
	exit 1
BT_LOG=core:info "$pretrans" build "$LK_VMLINUX" -o "$work/build.tcdb" >"$work/pretrans.log" 2>&1 || {
	cat "$work/pretrans.log"
	exit 1
}
grep 'predicted patching' "$work/pretrans.log"
cp "$work/build.tcdb" "$work/learn.tcdb"
# --learn commits when the VM stops: give it time to end by itself
LK_GRACE=60 lk_run_vm btvm "$work/learn" "$work/initrd.cpio" "$LK_CMDLINE" 512M 180 \
	--tcdb "$work/learn.tcdb" --learn --stats=json >/dev/null 2>&1
[ -n "$(lk_stamp_ms "$work/learn" user)" ] || { echo "kpatch-check: the --learn boot failed" >&2; exit 1; }
"$pretrans" kpatch "$LK_VMLINUX" --check "$work/learn.tcdb" || exit 1

LK_GRACE=${LK_GRACE:-5} lk_run_vm btvm "$work/warm" "$work/initrd.cpio" "$LK_CMDLINE" 512M 180 \
	--tcdb "$work/build.tcdb" --stats=json --log db:info >/dev/null 2>&1
j=$(grep -a '^{"schema":"btkern-btvm-stats/' "$work/warm/stderr" | tail -n 1)
num() { echo "$j" | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
echo "warm boot from the build database, no learning: $(num from_db) blocks from the database" \
	"($(num db_predicted) predicted versions), $(num db_stale) stale, $(num translated) translated"
grep -a 'predicted patching:.*loaded' "$work/warm/stderr"
