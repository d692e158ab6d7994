#!/usr/bin/env bash
# The interactive serial console, typed into as a user would: btvm runs in a
# tmux pane (a real terminal), Debian's cloud kernel boots a busybox
# initramfs whose /init starts a shell on the console, and tmux types.
# An explicit step, not in `make check`: it needs Debian's kernel, which
# tests/tools/fetch-debian-kernel.sh and fetch-debian-image.sh download once
# (lk_fetch does it; `make check-console-tty` runs this script).
#
#   tests/linux/console-tty.sh [BUILD_DIR]
#
# Checks, each a failure of its own:
#   1. a typed command runs and its output appears (echo $((6 * 7)) -> 42);
#   2. the terminal is raw: the typed line appears once (the guest's echo,
#      not the host terminal's as well), and a password typed after `stty
#      -echo` in the guest does not appear at all;
#   3. Ctrl-C reaches the guest: it interrupts a `sleep 600` and the shell
#      prompt comes back while btvm keeps running;
#   4. Ctrl-A x stops btvm: exit status 130 (stopped by SIGINT, the clean
#      stop), within 10 s;
#   5. the terminal's settings after btvm are the ones before it
#      (stty -g in the same pane).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
# shellcheck source=tests/linux/lib.sh
. "$root/tests/linux/lib.sh"
LK_BTVM=$build/bin/btvm
[ -x "$LK_BTVM" ] || { echo "console-tty: $LK_BTVM missing: make -j2" >&2; exit 1; }
command -v tmux >/dev/null || { echo "console-tty: tmux not found: apt-get install tmux" >&2; exit 1; }
lk_fetch || exit 1
work=$(mktemp -d /tmp/console-tty.XXXXXX)
sock=$work/tmux.sock
cleanup() {
	tmux -S "$sock" kill-server 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/init" <<'IEOF'
#!/bin/sh
. /lib/lk.sh
lk_setup
echo "@@LK ready"
# a shell with the console as its controlling terminal, so Ctrl-C reaches it
exec setsid cttyhack sh -i
IEOF
lk_initramfs_new "$work/initrd.d" "$work/init" || exit 1
lk_initramfs_pack "$work/initrd.d" "$work/initrd.cpio" || exit 1

fails=0
fail() {
	echo "console-tty: FAIL: $*"
	fails=$((fails + 1))
}
pane() { tmux -S "$sock" capture-pane -p -S -200 -t t; }
wait_for() { # REGEX SECONDS
	local i=0
	while [ $i -lt $(($2 * 10)) ]; do
		pane | grep -Eq "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
type_keys() { tmux -S "$sock" send-keys -t t "$@"; }

# one shell in the pane: records the terminal's settings, runs btvm,
# records its status and the settings again
cat >"$work/run.sh" <<EOF
stty -g >"$work/stty.before"
"$LK_BTVM" run --kernel "$LK_VMLINUX" --initrd "$work/initrd.cpio" --mem 256M \\
	--cmdline "$LK_CMDLINE" --timeout 300 2>"$work/stderr"
echo \$? >"$work/status"
stty -g >"$work/stty.after"
EOF
tmux -S "$sock" new-session -d -s t -x 160 -y 50 "bash $work/run.sh; sleep 600"
if ! wait_for '@@LK ready' 120; then
	fail "the guest did not reach its shell in 120 s"
	pane | tail -n 20
	exit 1
fi
sleep 1
type_keys 'echo $((6 * 7))' Enter
wait_for '^42' 30 || fail "typed command: no 42 in the pane"
n=$(pane | grep -c 'echo \$((6 \* 7))')
[ "$n" = 1 ] || fail "the typed line appears $n times (1 expected: the guest's echo only)"

type_keys 'stty -echo; read -r pw; stty echo; echo "got ${#pw}"' Enter
sleep 1
type_keys 'sekrit-1234' Enter
wait_for '^got 11' 30 || fail "read after stty -echo: no 'got 11'"
pane | grep -q 'sekrit-1234' && fail "a password typed with echo off appeared in the pane"

type_keys 'sleep 600; echo after-sleep' Enter
sleep 2
type_keys C-c
type_keys 'echo back-$((40 + 2))' Enter
wait_for '^back-42' 30 || fail "Ctrl-C did not interrupt the guest's sleep (no prompt back)"
pane | grep -q '^after-sleep' && fail "the sleep ran to its end: Ctrl-C did not reach it"
[ -f "$work/status" ] && fail "btvm exited on Ctrl-C (the key must go to the guest)"

type_keys C-a x
i=0
while [ ! -f "$work/stty.after" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -f "$work/status" ]; then
	fail "Ctrl-A x did not stop btvm within 10 s"
else
	st=$(cat "$work/status")
	[ "$st" = 130 ] || fail "btvm exit status $st after Ctrl-A x (130 expected: SIGINT's clean stop)"
	grep -q 'stopped by signal 2' "$work/stderr" ||
		fail "btvm did not report the clean stop: $(tail -n 2 "$work/stderr")"
	cmp -s "$work/stty.before" "$work/stty.after" ||
		fail "the terminal's settings changed: $(cat "$work/stty.before") -> $(cat "$work/stty.after")"
fi
if [ "$fails" -gt 0 ]; then
	echo "console-tty: the pane:"
	pane | tail -n 25
	exit 1
fi
echo "console-tty: ok: typed commands, raw terminal (one echo, hidden password), Ctrl-C to the guest, Ctrl-A x stops btvm (130), terminal restored"
