#!/usr/bin/env bash
# Guest user code benchmark (not a test): the guest's /bin/bench (test=none
# bench=1) under btvm and under QEMU TCG, and the same code natively
# ($BUILD/guests/bench-native), N rounds each, best of N, side by side;
# then where btvm's time goes: host micro-benchmarks of the mechanisms a
# guest event costs (native syscall, ptrace SYSEMU round trip, register
# transfer, a host call through the stub's gadget), and btvm's own counters
# per event.  Everything runs pinned to one CPU (taskset -c $CPU), like
# check-guest-user-native.
#
#   tests/bench/user-bench.sh [BUILD_DIR] [N]      (CPU=1 by default)
#
# Guest-side times come from the guest's clock: under btvm its TSC is the
# host's but its frequency is the guest's own PIT calibration, so btvm's
# figures are corrected by (guest kHz / host kHz); QEMU's TSC is virtual and
# calibrated against the same virtual PIT, so its figures stand as printed.
set -u
build=${1:-build}
n=${2:-3}
cpu=${CPU:-1}
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
pin=(taskset -c "$cpu")
metrics="getpid_roundtrip dep_loop crc32 fork_wait page_fault"
val() { sed -nE "s/^RESULT $2 ([0-9.]+) .*/\1/p" "$1" | head -n 1; }
tsc() { sed -nE 's/^# tsc: ([0-9]+) kHz/\1/p' "$1" | head -n 1; }

for i in $(seq 1 "$n"); do
	"${pin[@]}" "$native" >"$work/native.$i" 2>&1
	"${pin[@]}" "$btvm" run --kernel "$GU_KERNEL" --initrd "$initrd" --timeout 120 --stats \
		--cmdline "console=ttyS0 test=none bench=1" </dev/null \
		>"$work/btvm.$i.raw" 2>"$work/btvm.$i.stats"
	tr -d '\r' <"$work/btvm.$i.raw" >"$work/btvm.$i"
	if command -v "$QEMU" >/dev/null; then
		mkdir -p "$work/q$i"
		GU_TIMEOUT=120 "${pin[@]}" true
		GU_KERNEL=$GU_KERNEL GU_TIMEOUT=120 gu_qemu_run "$work/q$i" \
			"console=ttyS0 test=none bench=1" "$initrd"
		cp "$work/q$i/console.raw" "$work/qemu.$i"
	fi
done

# host TSC frequency from the native run: cycles / ns of the same loop
host_khz=$(awk -v c="$(val "$work/native.1" getpid_roundtrip_cycles)" \
	-v t="$(val "$work/native.1" getpid_roundtrip)" 'BEGIN { printf "%d", c / t * 1e6 }')
best() { # KIND METRIC: best of the N rounds (max for MB/s, min otherwise)
	local k=$1 m=$2 f v out=""
	for f in "$work/$k".[0-9]*; do
		case $f in *.raw | *.stats) continue ;; esac
		v=$(val "$f" "$m")
		[ -n "$v" ] || continue
		if [ "$k" = btvm ]; then # guest ns -> host ns
			v=$(awk -v v="$v" -v g="$(tsc "$f")" -v h="$host_khz" -v m="$m" \
				'BEGIN { r = (g > 0 ? g / h : 1); print (m == "crc32" ? v / r : v * r) }')
		fi
		out="$out $v"
	done
	echo "$out" | tr ' ' '\n' | grep . | sort -g | if [ "$m" = crc32 ]; then tail -n 1; else head -n 1; fi
}
echo "user-bench: best of $n, pinned to CPU $cpu; host TSC $host_khz kHz"
printf '%-18s %12s %12s %12s %10s %10s\n' metric native btvm "QEMU TCG" btvm/nat qemu/nat
for m in $metrics; do
	nv=$(best native "$m") bv=$(best btvm "$m") qv=$(best qemu "$m" 2>/dev/null)
	unit=$(sed -nE "s/^RESULT $m [0-9.]+ (.*)/\1/p" "$work/native.1")
	# ratios as speed relative to native (>1 = faster than native)
	ratio() { awk -v a="$1" -v b="$2" -v m="$m" \
		'BEGIN { if (a == "" || b == "" || a == 0 || b == 0) print "-"; else printf "%.2fx", (m == "crc32" ? b / a : a / b) }'; }
	printf '%-18s %12s %12s %12s %10s %10s  (%s)\n' "$m" "$nv" "${bv:--}" "${qv:--}" \
		"$(ratio "$nv" "$bv")" "$(ratio "$nv" "$qv")" "$unit"
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
#include <time.h>
#include <unistd.h>
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
	return 0;
}
CEOF
echo
echo "user-bench: host mechanisms (pinned, 20000 iterations each)"
if cc -O2 -o "$work/rt" "$work/rt.c" 2>"$work/rt.err"; then
	"${pin[@]}" "$work/rt"
	echo "  unpinned (tracer and tracee may sit on different CPUs):"
	"$work/rt" | sed 's/^/  /'
else
	cat "$work/rt.err"
fi
echo
echo "user-bench: btvm counters for the whole benchmark run (round 1):"
grep -E '^btvm: (user|time)' "$work/btvm.1.stats" | sed 's/^/  /'
