#!/usr/bin/env bash
# Guest user code benchmark (not a test): the guest's /bin/bench (test=none
# bench=1) under btvm and under QEMU TCG, and the same code natively
# ($BUILD/guests/bench-native), N rounds each, medians side by side (a
# round that printed no value for a metric counts as a failure, slower than
# every success, and is reported); then where btvm's time goes: host
# micro-benchmarks of the mechanisms a guest event costs (native syscall,
# ptrace SYSEMU round trip, register transfer, a host call through the
# stub's gadget, a futex hand-off), and btvm's own counters per event.
#
#   tests/bench/user-bench.sh [BUILD_DIR] [N]
#   PIN=1 (default): native, btvm (with its stubs) and QEMU all run pinned to
#                    CPU $CPU (taskset -c; QEMU through a wrapper, so all its
#                    threads); PIN=0: none is pinned.  The script says which.
#   BTVM_ARGS="...": extra btvm run options (e.g. a user-mode option).
#   BASE=path/to/btvm: a second btvm (e.g. built from an older commit) run
#                    in the same rounds, right after the first: an A/B
#                    comparison under the same machine load (column "base").
#
# Guest-side times come from the guest's clock: under btvm its TSC is the
# host's but its frequency is the guest's own PIT calibration, so btvm's
# figures are corrected by (guest kHz / host kHz); QEMU's TSC is virtual and
# calibrated against the same virtual PIT, so its figures stand as printed.
set -u
build=${1:-build}
n=${2:-3}
cpu=${CPU:-1}
pin_all=${PIN:-1}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/qemu-lib.sh"
btvm=$build/bin/btvm
GU_KERNEL=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
native=$build/guests/bench-native
for f in "$btvm" "$GU_KERNEL" "$initrd" "$native"; do
	[ -e "$f" ] || { echo "user-bench: $f missing: make BUILD=$build" >&2; exit 1; }
done
work=$(mktemp -d /tmp/user-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
qemu_bin=$(command -v "$QEMU" || true)
if [ "$pin_all" = 1 ]; then
	pin=(taskset -c "$cpu")
	pinned="pinned to CPU $cpu (native, btvm and its stubs, QEMU)"
	if [ -n "$qemu_bin" ]; then
		# gu_qemu_run runs $QEMU: a wrapper pins QEMU and every thread it starts
		printf '#!/bin/sh\nexec taskset -c %s %s "$@"\n' "$cpu" "$qemu_bin" >"$work/qemu-pinned"
		chmod +x "$work/qemu-pinned"
		QEMU=$work/qemu-pinned
	fi
else
	pin=()
	pinned="not pinned (native, btvm and QEMU float over all CPUs)"
fi
# shellcheck disable=SC2206 # word splitting of the option list is intended
extra=(${BTVM_ARGS:-})
metrics="getpid_roundtrip dep_loop crc32 fork_wait page_fault"
val() { sed -nE "s/^RESULT $2 ([0-9.]+) .*/\1/p" "$1" | head -n 1; }
tsc() { sed -nE 's/^# tsc: ([0-9]+) kHz/\1/p' "$1" | head -n 1; }

for i in $(seq 1 "$n"); do
	"${pin[@]}" "$native" >"$work/native.$i" 2>&1
	"${pin[@]}" "$btvm" run --kernel "$GU_KERNEL" --initrd "$initrd" --timeout 120 --stats \
		"${extra[@]}" --cmdline "console=ttyS0 test=none bench=1" </dev/null \
		>"$work/btvm.$i.raw" 2>"$work/btvm.$i.stats"
	tr -d '\r' <"$work/btvm.$i.raw" >"$work/btvm.$i"
	if [ -n "${BASE:-}" ]; then
		"${pin[@]}" "$BASE" run --kernel "$GU_KERNEL" --initrd "$initrd" --timeout 120 \
			--stats "${extra[@]}" --cmdline "console=ttyS0 test=none bench=1" </dev/null \
			>"$work/base.$i.raw" 2>"$work/base.$i.stats"
		tr -d '\r' <"$work/base.$i.raw" >"$work/base.$i"
	fi
	if [ -n "$qemu_bin" ]; then
		mkdir -p "$work/q$i"
		GU_KERNEL=$GU_KERNEL GU_TIMEOUT=120 gu_qemu_run "$work/q$i" \
			"console=ttyS0 test=none bench=1" "$initrd"
		cp "$work/q$i/console.raw" "$work/qemu.$i"
	fi
done

# host TSC frequency from the native run: cycles / ns of the same loop
host_khz=$(awk -v c="$(val "$work/native.1" getpid_roundtrip_cycles)" \
	-v t="$(val "$work/native.1" getpid_roundtrip)" 'BEGIN { printf "%d", c / t * 1e6 }')
# KIND METRIC -> "median failed": the median of the N rounds, a round without
# the value counted as a failure (worse than every success: the median is
# FAIL when half the rounds or more failed)
median() {
	local k=$1 m=$2 i f v bad=0 vals=""
	for i in $(seq 1 "$n"); do
		f=$work/$k.$i
		v=$( [ -e "$f" ] && val "$f" "$m")
		if [ -z "$v" ]; then
			bad=$((bad + 1))
			continue
		fi
		if [ "$k" = btvm ] || [ "$k" = base ]; then # guest ns -> host ns
			v=$(awk -v v="$v" -v g="$(tsc "$f")" -v h="$host_khz" -v m="$m" \
				'BEGIN { r = (g > 0 ? g / h : 1); print (m == "crc32" ? v / r : v * r) }')
		fi
		vals="$vals $v"
	done
	# failures sort last (or first for MB/s, where higher is better)
	echo "$vals" | tr ' ' '\n' | grep . | awk -v n="$n" -v bad="$bad" -v m="$m" '
		{ a[NR] = $1 }
		END {
			cnt = NR; for (i = 0; i < bad; i++) a[++cnt] = (m == "crc32" ? -1 : 1e300)
			# sort ascending (insertion sort: N is small)
			for (i = 2; i <= cnt; i++) { x = a[i]; j = i - 1
				while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
			if (m == "crc32") { for (i = 1; i <= cnt / 2; i++) { t = a[i]; a[i] = a[cnt + 1 - i]; a[cnt + 1 - i] = t } }
			v = cnt ? a[int((cnt + 1) / 2)] : 1e300
			if (v == 1e300 || v == -1) print "FAIL", bad; else print v, bad
		}'
}
echo "user-bench: median of $n rounds, $pinned; host TSC $host_khz kHz"
printf '%-18s %12s %12s %12s %10s %10s %10s\n' metric native btvm "QEMU TCG" btvm/nat qemu/nat btvm/qemu
for m in $metrics; do
	read -r nv nf <<<"$(median native "$m")"
	read -r bv bf <<<"$(median btvm "$m")"
	if [ -n "$qemu_bin" ]; then read -r qv qf <<<"$(median qemu "$m")"; else qv=- qf=$n; fi
	unit=$(sed -nE "s/^RESULT $m [0-9.]+ (.*)/\1/p" "$work/native.1")
	base=""
	if [ -n "${BASE:-}" ]; then
		read -r av af <<<"$(median base "$m")"
		base="; base $av ($af failed)"
	fi
	# speed relative to the second (>1 = the first is faster)
	ratio() { awk -v a="$1" -v b="$2" -v m="$m" \
		'BEGIN { if (a !~ /^[0-9.e+-]+$/ || b !~ /^[0-9.e+-]+$/ || a == 0 || b == 0) print "-"; else printf "%.2fx", (m == "crc32" ? b / a : a / b) }'; }
	printf '%-18s %12s %12s %12s %10s %10s %10s  (%s; failed runs: native %s, btvm %s, QEMU %s%s)\n' \
		"$m" "$nv" "$bv" "$qv" "$(ratio "$nv" "$bv")" "$(ratio "$nv" "$qv")" \
		"$(ratio "$qv" "$bv")" "$unit" "$nf" "$bf" "$qf" "$base"
done

# --- where btvm's time goes ---------------------------------------------------
cat >"$work/rt.c" <<'CEOF'
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
static void on_sigsys(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(void)
{
	enum { N = 20000 };
	double t0 = now();
	for (int i = 0; i < N; i++) syscall(SYS_getppid);
	printf("native getppid                      %8.2f us\n", (now() - t0) / N / 1e3);
	pid_t c = fork();
	if (!c) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		for (;;) __asm__ volatile("mov $110, %%eax; syscall; int3" ::: "rax", "rcx", "r11", "memory");
	}
	int st;
	struct user_regs_struct r;
	unsigned char fx[512];
	waitpid(c, &st, 0);
	/* SYSEMU round trip: stop at each syscall, resume */
	t0 = now();
	for (int i = 0; i < N; i++) { ptrace(PTRACE_SYSEMU, c, 0, 0); waitpid(c, &st, 0); }
	printf("ptrace SYSEMU round trip            %8.2f us\n", (now() - t0) / N / 1e3);
	/* + what btvm moves per syscall: GETREGS, GETFPREGS, SETREGS */
	t0 = now();
	for (int i = 0; i < N; i++) {
		ptrace(PTRACE_SYSEMU, c, 0, 0); waitpid(c, &st, 0);
		ptrace(PTRACE_GETREGS, c, 0, &r); ptrace(PTRACE_GETFPREGS, c, 0, fx);
		ptrace(PTRACE_SETREGS, c, 0, &r);
	}
	printf("  + GETREGS, GETFPREGS, SETREGS     %8.2f us\n", (now() - t0) / N / 1e3);
	/* a host call: SETREGS to a syscall; PTRACE_CONT; stop at int3 */
	ptrace(PTRACE_SYSEMU, c, 0, 0); waitpid(c, &st, 0);
	ptrace(PTRACE_GETREGS, c, 0, &r);
	struct user_regs_struct g = r;
	g.rip -= 2; g.rax = 110; g.orig_rax = -1;
	t0 = now();
	for (int i = 0; i < N; i++) {
		ptrace(PTRACE_SETREGS, c, 0, &g); ptrace(PTRACE_CONT, c, 0, 0); waitpid(c, &st, 0);
		ptrace(PTRACE_GETREGS, c, 0, &r);
	}
	printf("host call in a stopped tracee       %8.2f us\n", (now() - t0) / N / 1e3);
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	/* the futex hand-off floor: two processes ping-pong a shared word */
	volatile int *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*w = 0;
	if (!(c = fork())) {
		for (int i = 0; i < N; i++) {
			while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != 1)
				syscall(SYS_futex, w, FUTEX_WAIT, 0, 0, 0, 0);
			__atomic_store_n(w, 0, __ATOMIC_RELEASE);
			syscall(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
		}
		_exit(0);
	}
	t0 = now();
	for (int i = 0; i < N; i++) {
		__atomic_store_n(w, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
		while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != 0)
			syscall(SYS_futex, w, FUTEX_WAIT, 1, 0, 0, 0);
	}
	printf("futex hand-off round trip           %8.2f us\n", (now() - t0) / N / 1e3);
	waitpid(c, &st, 0);
	/* a seccomp SECCOMP_RET_TRAP: SIGSYS to an in-process handler, sigreturn
	 * (what a stub would pay per guest syscall before any hand-off) */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, 0);
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {4, f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) {
		t0 = now();
		for (int i = 0; i < N; i++) syscall(SYS_getppid);
		printf("seccomp trap: SIGSYS handler + sigreturn %5.2f us\n", (now() - t0) / N / 1e3);
	}
	return 0;
}
CEOF
echo
echo "user-bench: host mechanisms (20000 iterations each), pinned to CPU $cpu:"
if cc -O2 -o "$work/rt" "$work/rt.c" 2>"$work/rt.err"; then
	taskset -c "$cpu" "$work/rt"
	echo "  unpinned (tracer and tracee may sit on different CPUs):"
	"$work/rt" | sed 's/^/  /'
else
	cat "$work/rt.err"
fi
echo
echo "user-bench: btvm counters for the whole benchmark run (round 1):"
grep -E '^btvm: (user|time)' "$work/btvm.1.stats" | sed 's/^/  /'
