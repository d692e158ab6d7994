#!/usr/bin/env bash
# Run the guest's user test programs NATIVELY on this Linux host (check step
# check-guest-user-native).  They are static Linux x86-64 binaries using only
# Linux syscalls, so the host kernel is an oracle for the guest kernel: a
# test that fails here is a wrong test, not a guest bug.  All programs run
# pinned to one CPU (the guest has one; 11-yield and 13-preempt need it).
#
# Programs in guests/user/tests/host-lacks.txt need a mechanism this host
# does not provide natively (a paravirtualised VM): reported as skipped.
#
#   tests/integration/user-native.sh BUILD_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: user-native.sh BUILD_DIR}
lacks=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/../../guests/user/tests/host-lacks.txt")
dir="$build/guests/user/tests"
if ! ls "$dir"/[0-9]* >/dev/null 2>&1; then
	echo "user-native: no test programs in $dir: build $build/guests/initrd.cpio" >&2
	exit 1
fi
if ! command -v taskset >/dev/null; then
	echo "user-native: taskset (util-linux) is required" >&2
	exit 1
fi
n=0
fail=0
for t in "$dir"/[0-9]*; do
	n=$((n + 1))
	name=$(basename "$t")
	if printf '%s\n' $lacks | grep -qx -- "$name"; then
		echo "ok $n - native/$name # SKIP this host lacks the mechanism (guests/user/tests/host-lacks.txt)"
		continue
	fi
	abs=$(cd "$(dirname "$t")" && pwd)/$name
	out=$(env -i BT_EXEC_SELF="$abs" timeout 60 taskset -c 0 "$abs" 2>&1)
	st=$?
	if [ $st -eq 0 ]; then
		echo "ok $n - native/$name"
	else
		echo "not ok $n - native/$name (exit status $st)"
		printf '%s\n' "$out" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "user-native: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
