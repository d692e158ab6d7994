#!/usr/bin/env bash
# btvm's sandbox (check step check-btvm-sandbox; docs/security.md).
#
#   tests/integration/btvm-sandbox.sh BUILD_DIR
#
#   status      a running VM (tiny-spin, --timeout) has Seccomp: 2,
#               NoNewPrivs: 1 and no capability (CapEff, CapPrm, CapInh,
#               CapBnd, CapAmb all 0) in /proc/PID/status, read by the PID
#               of the btvm this script started, which it then stops by PID
#               (SIGTERM: status 130, so the stop path runs sandboxed too)
#   stubs       a user stub of a sandboxed btvm runs under two filters
#               (btvm's and its own) with no capability
#   no-sandbox  --no-sandbox: Seccomp: 0 (the option is honoured)
#   selftest    btvm --sandbox-selftest enters the sandbox and calls socket():
#               it must die by SIGSYS (status 128 + 31), not return
#   code cache  the RX and RW views of the code cache are separate mappings
#               at no fixed distance (two boots: different distances)
# The whole guest suite runs sandboxed in check-btvm-boot and check-btvm-user
# (btvm's default), --learn's write-back included.
set -u
build=${1:?usage: btvm-sandbox.sh BUILD_DIR}
btvm=$build/bin/btvm
spin=$build/tests/guests/tiny-spin.elf
kernel=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
for f in "$btvm" "$spin" "$kernel" "$initrd"; do
	if [ ! -e "$f" ]; then
		echo "btvm-sandbox: $f is missing: build it with make BUILD=$build" >&2
		exit 1
	fi
done
work=$(mktemp -d /tmp/btvm-sandbox.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
	echo "btvm-sandbox: FAIL [$1]: $2"
	failures=$((failures + 1))
}

# field FILE NAME: the value of "NAME:" in a /proc status copy
field() { awk -v k="$2:" '$1 == k { print $2 }' "$1"; }

# start_spin NAME ARGS...: btvm on tiny-spin in the background; vmpid is set
start_spin() {
	local name=$1
	shift
	"$btvm" run --kernel "$spin" --timeout 30 "$@" </dev/null >"$work/$name.out" \
		2>"$work/$name.err" &
	vmpid=$!
}

# wait_status NAME FIELD VALUE: copy /proc/$vmpid/status once FIELD has VALUE
# (the sandbox is entered just before the guest runs), at most 5 s
wait_status() {
	for _ in $(seq 1 100); do
		cp "/proc/$vmpid/status" "$work/$1.status" 2>/dev/null || return 1
		[ "$(field "$work/$1.status" "$2")" = "$3" ] && return 0
		sleep 0.05
	done
	return 0
}

stop_vm() { # NAME: SIGTERM by PID; the status must be 130
	kill -TERM "$vmpid" 2>/dev/null
	wait "$vmpid"
	local st=$?
	[ "$st" = 130 ] || fail "$1" "btvm exit status $st after SIGTERM, expected 130: $(head -c 300 "$work/$1.err")"
}

# --- status: the sandbox is on in a running VM ------------------------------
start_spin status
if wait_status status Seccomp 2; then
	s=$work/status.status
	for kv in Seccomp=2 NoNewPrivs=1 CapEff=0000000000000000 CapPrm=0000000000000000 \
		CapInh=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000; do
		got=$(field "$s" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] || fail status "${kv%%=*}: $got, expected ${kv#*=}"
	done
	echo "btvm-sandbox: [status] pid $vmpid: $(grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' "$s" | tr -s '\t\n' '  ')"
else
	fail status "btvm $vmpid exited before its status could be read: $(head -c 300 "$work/status.err")"
fi
stop_vm status

# --- stubs: a user stub inherits the sandbox -------------------------------
# --user=direct: the spinning program loops in faults and system calls,
# which the default (adaptive) mode rightly keeps translated, stub-less
"$btvm" run --kernel "$kernel" --initrd "$initrd" --timeout 30 --user=direct \
	--cmdline "console=ttyS0 test=none crash=userspin" </dev/null >"$work/stub.out" 2>"$work/stub.err" &
vmpid=$!
stub=""
for _ in $(seq 1 200); do
	stub=$(pgrep -P "$vmpid" | head -n 1)
	[ -n "$stub" ] && cp "/proc/$stub/status" "$work/stub.status" 2>/dev/null &&
		[ "$(field "$work/stub.status" Seccomp_filters)" = 2 ] && break
	stub=""
	sleep 0.05
done
if [ -z "$stub" ]; then
	fail stubs "no stub with two seccomp filters appeared under btvm $vmpid"
else
	for kv in Seccomp=2 Seccomp_filters=2 NoNewPrivs=1 CapEff=0000000000000000 \
		CapPrm=0000000000000000 CapBnd=0000000000000000; do
		got=$(field "$work/stub.status" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] || fail stubs "stub $stub: ${kv%%=*}: $got, expected ${kv#*=}"
	done
	echo "btvm-sandbox: [stubs] stub $stub of btvm $vmpid: two filters, no capability"
fi
stop_vm stub

# --- no-sandbox: the option turns it off ------------------------------------
start_spin nosb --no-sandbox
sleep 0.5
if cp "/proc/$vmpid/status" "$work/nosb.status" 2>/dev/null; then
	[ "$(field "$work/nosb.status" Seccomp)" = 0 ] ||
		fail no-sandbox "Seccomp: $(field "$work/nosb.status" Seccomp) with --no-sandbox"
else
	fail no-sandbox "btvm --no-sandbox exited early: $(head -c 300 "$work/nosb.err")"
fi
stop_vm nosb

# --- selftest: a forbidden call kills btvm by SIGSYS --------------------------
# (in a subshell whose stderr is dropped: bash's "Bad system call" notice)
(
	"$btvm" --sandbox-selftest 2>"$work/selftest.err"
	echo $? >"$work/selftest.st"
) 2>/dev/null
st=$(cat "$work/selftest.st")
if [ "$st" != $((128 + 31)) ]; then
	fail selftest "exit status $st, expected 159 (SIGSYS): $(head -c 300 "$work/selftest.err")"
elif ! grep -q "calling socket" "$work/selftest.err"; then
	fail selftest "died by SIGSYS before the forbidden call: $(head -c 300 "$work/selftest.err")"
else
	echo "btvm-sandbox: [selftest] socket() in the sandbox: killed by SIGSYS (status $st)"
fi

# --- code cache: RX and RW at no fixed distance -----------------------------
distance() { # NAME: dist = RW start - RX start of the code cache in a running btvm
	start_spin "$1"
	wait_status "$1" Seccomp 2
	local maps rx rw
	maps=$(grep 'tc-code-cache' "/proc/$vmpid/maps")
	rx=$(echo "$maps" | awk '$2 ~ /^r-x/ { split($1, a, "-"); print a[1] }')
	rw=$(echo "$maps" | awk '$2 ~ /^rw-/ { split($1, a, "-"); print a[1] }')
	stop_vm "$1"
	if [ -z "$rx" ] || [ -z "$rw" ] || [ "$(echo "$maps" | grep -c 'rwx')" != 0 ]; then
		fail code-cache "no separate RX and RW views: $maps"
		dist=0
		return
	fi
	dist=$((0x$rw - 0x$rx))
}
distance cc1
d1=$dist
distance cc2
d2=$dist
if [ "$d1" = "$d2" ]; then
	fail code-cache "the RW view is at the same distance from the RX one in two boots ($d1)"
else
	echo "btvm-sandbox: [code cache] RW - RX: $d1, then $d2"
fi

if [ "$failures" -ne 0 ]; then
	echo "btvm-sandbox: $failures failure(s)"
	exit 1
fi
echo "btvm-sandbox: all ok"
