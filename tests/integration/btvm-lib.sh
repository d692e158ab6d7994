# shellcheck shell=bash disable=SC2034,SC2154 # failures is read by the caller; btvm and work are set by it
# Shared helpers for the btvm integration scripts (sourced, not run).
# The caller sets BT_TAG (message prefix), btvm (the binary) and work (a
# scratch directory), then uses:
#
#   fail NAME WHY              count and print a failure
#   run NAME STATUS btvm-args  boot with a fresh 1 MiB disk; console in
#                              $work/NAME/console.raw, stderr in
#                              $work/NAME/stderr; fails unless btvm exits
#                              with STATUS (BT_TIMEOUT seconds, default 60)
#   platform_filter FILE       gu_mask (qemu-lib.sh), minus the three
#                              platform-identity diagnostics (see below)
#   json FILE KEY              the first "KEY":N of btvm's --stats=json
#
# The two machines differ by design in three diagnostic lines, which are
# dropped on both sides of a comparison: how the guest was entered (QEMU
# boots an ELF only through PVH; btvm uses the Linux 64-bit protocol), the
# firmware's e820 map (QEMU's firmware vs btvm's Firecracker-style layout),
# and the CPU vendor string (QEMU TCG's model says AuthenticAMD, btvm's
# profile GenuineIntel).  Every TAP line, result and error line is compared
# as is.

failures=0

fail() {
	echo "$BT_TAG: FAIL [$1]: $2"
	failures=$((failures + 1))
}

run() {
	local name=$1 want=$2
	shift 2
	mkdir -p "$work/$name"
	dd if=/dev/zero of="$work/$name/disk.img" bs=1024 count=1024 status=none
	local start=$SECONDS limit=${BT_TIMEOUT:-60}
	timeout --kill-after=5 $((limit + 30)) "$btvm" run --disk "$work/$name/disk.img" \
		--timeout "$limit" "$@" </dev/null >"$work/$name/console.bin" 2>"$work/$name/stderr"
	local st=$?
	tr -d '\r' <"$work/$name/console.bin" >"$work/$name/console.raw"
	echo "$BT_TAG: [$name] status $st in $((SECONDS - start)) s"
	if [ "$st" != "$want" ]; then
		fail "$name" "btvm exit status $st, expected $want"
		tail -n 12 "$work/$name/console.raw"
		tail -n 12 "$work/$name/stderr"
		return 1
	fi
	return 0
}

platform_filter() {
	gu_mask "$1" | grep -vE '^# (boot|e820):' |
		sed -E "s/^(# cpuid: vendor )'[A-Za-z]+'/\\1'V'/"
}

json() {
	grep -o "\"$2\":[0-9]*" "$1" | head -n 1 | cut -d: -f2
}
