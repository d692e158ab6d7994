#!/usr/bin/env bash
# The guest's QEMU boot test (check step check-guest-qemu).
#
#   tests/integration/qemu-boot.sh BUILD_DIR            run every scenario
#   tests/integration/qemu-boot.sh --rebase BUILD_DIR   rewrite the .expect files
#
# Scenarios (QEMU TCG, the guest contract's reference command):
#   all      test=all with the initrd: masked console == guests/qemu-all.expect
#            (the programs in guests/user/tests/qemu-lacks.txt as skip=)
#   kernel   test=kernel, no initrd:    masked console == guests/qemu-kernel.expect;
#            kernel/kmod must fail (its module is in the initrd; guest
#            contract) and is the only failure, so QEMU exits with 3
#   bench    test=none bench=1:         every benchmark RESULT name is printed
#   unknown  test=nosuchtest:           the contract's error line, QEMU status 3
#   noinitrd test=all, no initrd:       the contract's error line, QEMU status 3
# A scenario fails on a timeout, a wrong QEMU exit status (1 = guest wrote 0
# to isa-debug-exit), any "not ok" line, a missing SUMMARY line or a
# difference from the expect file (printed as a unified diff).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/qemu-lib.sh"

rebase=0
if [ "${1:-}" = "--rebase" ]; then
	rebase=1
	shift
fi
build=${1:?usage: qemu-boot.sh [--rebase] BUILD_DIR}
GU_KERNEL="$build/guests/kernel.elf"
initrd="$build/guests/initrd.cpio"
for f in "$GU_KERNEL" "$initrd"; do
	if [ ! -f "$f" ]; then
		echo "qemu-boot: $f is missing: build it with make BUILD=$build $f" >&2
		exit 1
	fi
done

work=$(mktemp -d /tmp/qemu-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
	echo "qemu-boot: FAIL [$1]: $2"
	failures=$((failures + 1))
}

show_tail() {
	echo "--- last console lines ($1):"
	tail -n 15 "$1/console.raw"
	if [ -s "$1/qemu.stderr" ]; then
		echo "--- qemu stderr:"
		tail -n 5 "$1/qemu.stderr"
	fi
}

# check_run NAME DIR WANT_STATUS [ALLOWED_FAILURE]: status / timeout / TAP
# sanity.  With ALLOWED_FAILURE (a test name), exactly that test must fail.
check_run() {
	local name=$1 dir=$2 want=$3 allowed=${4:-} ok=1
	if [ "$GU_STATUS" = 124 ] || [ "$GU_STATUS" = 137 ]; then
		fail "$name" "timeout after ${GU_TIMEOUT}s"
		ok=0
	elif [ "$GU_STATUS" != "$want" ]; then
		fail "$name" "QEMU exit status $GU_STATUS, expected $want"
		ok=0
	fi
	if [ -n "$allowed" ]; then
		local nots
		nots=$(grep '^not ok' "$dir/console.raw" | sed -E 's/^not ok [0-9]+ - //')
		if [ "$nots" != "$allowed" ]; then
			fail "$name" "expected exactly '$allowed' to fail, failing: ${nots//$'\n'/ }"
			ok=0
		fi
		if ! grep -qE '^SUMMARY: [0-9]+ passed, 1 failed$' "$dir/console.raw"; then
			fail "$name" "no 'SUMMARY: N passed, 1 failed' line"
			ok=0
		fi
	elif [ "$want" = 1 ]; then
		if grep -q '^not ok' "$dir/console.raw"; then
			fail "$name" "failing tests: $(grep '^not ok' "$dir/console.raw" | tr '\n' ';')"
			ok=0
		fi
		if ! grep -qE '^SUMMARY: [0-9]+ passed, 0 failed$' "$dir/console.raw"; then
			fail "$name" "no 'SUMMARY: N passed, 0 failed' line"
			ok=0
		fi
	fi
	[ $ok = 1 ] || show_tail "$dir"
	return $((1 - ok))
}

# compare NAME DIR EXPECT_FILE
compare() {
	local name=$1 dir=$2 expect=$3
	gu_mask "$dir/console.raw" >"$dir/console.masked"
	if [ $rebase = 1 ]; then
		cp "$dir/console.masked" "$expect"
		echo "qemu-boot: [$name] rebased $expect ($(wc -l <"$expect") lines)"
		return 0
	fi
	if [ ! -f "$expect" ]; then
		fail "$name" "$expect does not exist (make rebase-expect writes it)"
		return 1
	fi
	if ! diff -u --label "$expect" --label "console ($name, masked)" \
		"$expect" "$dir/console.masked"; then
		fail "$name" "console differs from $expect (diff above)"
		return 1
	fi
}

scenario() {
	local name=$1
	mkdir -p "$work/$name"
	echo "qemu-boot: [$name] booting ..."
}

# 1. everything, but the programs QEMU cannot run as the hardware does
qemu_lacks=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \
	"$repo/guests/user/tests/qemu-lacks.txt" | tr -d ' \t' | paste -sd, -)
scenario all
gu_qemu_run "$work/all" "console=ttyS0 test=all${qemu_lacks:+ skip=$qemu_lacks}" "$initrd"
if check_run all "$work/all" 1 || [ $rebase = 0 ]; then
	compare all "$work/all" "$repo/guests/qemu-all.expect"
else
	echo "qemu-boot: [all] not rebased: the run failed"
fi
echo "qemu-boot: [all] ${GU_SECONDS}s"

# 2. kernel tests only, no initrd
scenario kernel
gu_qemu_run "$work/kernel" "console=ttyS0 test=kernel"
if check_run kernel "$work/kernel" 3 kernel/kmod || [ $rebase = 0 ]; then
	compare kernel "$work/kernel" "$repo/guests/qemu-kernel.expect"
else
	echo "qemu-boot: [kernel] not rebased: the run failed"
fi
echo "qemu-boot: [kernel] ${GU_SECONDS}s"

if [ $rebase = 0 ]; then
	# 3. benchmarks: every RESULT name appears with a numeric value
	scenario bench
	gu_qemu_run "$work/bench" "console=ttyS0 test=none bench=1" "$initrd"
	check_run bench "$work/bench" 1
	for r in getpid_roundtrip getpid_roundtrip_cycles dep_loop crc32 fork_wait page_fault disk_read; do
		grep -qE "^RESULT $r [0-9]+(\.[0-9]+)? [^ ]+$" "$work/bench/console.raw" ||
			fail bench "no 'RESULT $r <value> <unit>' line"
	done
	grep -q '^# crc32 .*: match$' "$work/bench/console.raw" ||
		fail bench "the benchmark's crc32 self-check did not print 'match'"
	echo "qemu-boot: [bench] ${GU_SECONDS}s"

	# 4. unknown test name
	scenario unknown
	gu_qemu_run "$work/unknown" "console=ttyS0 test=nosuchtest" "$initrd"
	check_run unknown "$work/unknown" 3
	grep -qF "[kernel] error: unknown test 'nosuchtest' (known: " "$work/unknown/console.raw" ||
		fail unknown "no \"[kernel] error: unknown test 'nosuchtest' (known: ...)\" line"
	[ "$GU_SECONDS" -le 15 ] || fail unknown "took ${GU_SECONDS}s, expected a quick failure"

	# 5. user tests requested without an initrd
	scenario noinitrd
	gu_qemu_run "$work/noinitrd" "console=ttyS0 test=all"
	check_run noinitrd "$work/noinitrd" 3
	grep -qF "[kernel] error: no initrd: cannot run user tests" "$work/noinitrd/console.raw" ||
		fail noinitrd "no '[kernel] error: no initrd: cannot run user tests' line"
	[ "$GU_SECONDS" -le 15 ] || fail noinitrd "took ${GU_SECONDS}s, expected a quick failure"
fi

if [ $failures -ne 0 ]; then
	echo "qemu-boot: $failures failure(s)"
	exit 1
fi
echo "qemu-boot: all scenarios passed"
