#!/usr/bin/env bash
# Fidelity check (not part of `make check`): Linux 6.1's own x86 selftests,
# the 64-bit set of tools/testing/selftests/x86 (21 programs), each booted in
# its own VM under QEMU TCG and under btvm in each user mode, side by side
# with the same binaries run natively on this host.  docs/fidelity.md holds
# the last table and the command that produced it.
#
#   tests/linux/kselftest-x86.sh [options] [TEST ...]     (default: all 21)
#
#   --modes "LIST"   btvm user modes, default "direct translated adaptive"
#                    ($KSELFTEST_MODES); "default" passes no --user flag
#   --no-qemu        skip the QEMU TCG column
#   --no-native      skip the native column
#   --build-only     build the selftests and stop
#   --table RUNDIR   print the table of an earlier run again (give the same
#                    --modes/--no-qemu/--no-native and tests)
#   --btvm-arg ARG   one more btvm argument (repeatable), e.g. --no-sandbox
#   --qemu-arg ARG   one more QEMU argument (repeatable): lib.sh runs
#                    `-cpu max`, and `--qemu-arg -cpu --qemu-arg qemu64`
#                    overrides it (QEMU takes the last -cpu)
#
# btvm is $LK_BTVM (default build/bin/btvm: `make -j2` first).
#
# Prerequisite (an explicit step, needs the network once):
#   apt-get install linux-source-6.1
# which leaves /usr/src/linux-source-6.1.tar.xz.  The script extracts only
# tools/testing/selftests/x86 (and the two headers it includes from outside)
# and builds the _64 programs static into
# ${BTKERN_CACHE:-~/.cache/btkern}/kselftest-x86-6.1/, outside git.
#
# Each VM: Debian 12's 6.1.0-50 cloud kernel (the bzImage for QEMU, the debug
# vmlinux for btvm, both fetched by tests/linux/lib.sh), 512 MiB, panic=-1,
# a busybox initramfs whose /init runs the one test under `timeout 60`
# between markers and powers off.  btvm runs with --timeout 180; lk_run_vm
# stops a VMM still there 2 s after its deadline by PID (SIGTERM, then
# SIGKILL), and the wall time of each btvm run is measured against its
# --timeout (issue 18: no VM may outlive it by more than a second).  QEMU
# gets the same deadline.  Logs of every run stay in
# $cache/kselftest-x86-6.1/runs/<date>/.
set -u
ks_argv=("$@")

ks_all_tests="single_step_syscall sysret_ss_attrs syscall_nt test_mremap_vdso
check_initial_reg_state sigreturn iopl ioperm test_vsyscall mov_ss_trap
sigtrap_loop syscall_arg_fault fsgsbase_restore sigaltstack fsgsbase sysret_rip
syscall_numbering corrupt_xstate_header amx ldt_gdt ptrace_syscall"

ks_src_tar=${KSELFTEST_SRC:-/usr/src/linux-source-6.1.tar.xz}
ks_cache=${BTKERN_CACHE:-$HOME/.cache/btkern}/kselftest-x86-6.1
ks_guest_timeout=60  # the guest's `timeout` around the test
ks_btvm_timeout=180  # btvm --timeout
ks_mem=512M

ks_die() {
	echo "kselftest-x86: $*" >&2
	exit 1
}

# --- building the selftests -------------------------------------------------

# The flags of the 6.1 Makefile's $(BINARIES_64) rule on a host that can
# build both 32- and 64-bit programs (then ldt_gdt and ptrace_syscall are in
# the 64-bit set, and -DCAN_BUILD_32 adds single_step_syscall's int $0x80
# case), plus -static: the initramfs has no libc.  KHDR_INCLUDES is left out:
# the system's linux-libc-dev is the same 6.1 series.
ks_cflags="-m64 -O2 -g -std=gnu99 -pthread -Wall -no-pie -DCAN_BUILD_32 -DCAN_BUILD_64 -static"

ks_build() {
	local src=$ks_cache/src/linux-source-6.1/tools/testing/selftests/x86
	local bin=$ks_cache/bin t extra
	if [ ! -f "$src/Makefile" ]; then
		[ -f "$ks_src_tar" ] || ks_die "$ks_src_tar missing: install it with" \
			"\`apt-get update && apt-get install linux-source-6.1\` (about 140 MB)"
		mkdir -p "$ks_cache"
		rm -rf "$ks_cache/src.tmp" && mkdir "$ks_cache/src.tmp"
		echo "kselftest-x86: extracting the x86 selftests from $ks_src_tar" >&2
		# sigreturn.c includes ../../../../arch/x86/include/asm/desc_defs.h,
		# amx.c and corrupt_xstate_header.c include ../kselftest.h.
		tar -xJf "$ks_src_tar" -C "$ks_cache/src.tmp" \
			linux-source-6.1/tools/testing/selftests/x86 \
			linux-source-6.1/tools/testing/selftests/kselftest.h \
			linux-source-6.1/arch/x86/include/asm/desc_defs.h ||
			ks_die "extracting from $ks_src_tar failed"
		rm -rf "$ks_cache/src" && mv "$ks_cache/src.tmp" "$ks_cache/src"
	fi
	mkdir -p "$bin"
	for t in $ks_all_tests; do
		[ -x "$bin/${t}_64" ] && [ "$bin/${t}_64" -nt "$src/$t.c" ] && continue
		extra=()
		case $t in
		sysret_ss_attrs) extra=(thunks.S) ;;
		# the Makefile: "it needs a custom entry, and it needs to be static"
		check_initial_reg_state) extra=('-Wl,-ereal_start') ;;
		esac
		# shellcheck disable=SC2086
		(cd "$src" && gcc $ks_cflags -o "$bin/${t}_64.tmp" "$t.c" "${extra[@]}" -lrt -ldl \
			2>"$ks_cache/build-$t.log") ||
			ks_die "building $t failed: see $ks_cache/build-$t.log"
		mv "$bin/${t}_64.tmp" "$bin/${t}_64"
	done
}

# --- one run ---------------------------------------------------------------
#
# Every run (a VM, or the native one) leaves DIR/console.txt, whose test
# output lies between the marker lines "@@LK kselftest begin" and
# "@@LK end STATUS" (guest-lib.sh's lk_mark and lk_end; a marker may follow
# a test's unterminated line, so it is matched anywhere in a line), and
# DIR/run: "VMM_STATUS WALL_MS TIMEDOUT ENDED" as lk_run_vm reports them.

ks_init() { # TEST OUT: the initramfs's /init
	cat >"$2" <<IEOF
#!/bin/sh
. /lib/lk.sh
lk_setup
cd /tmp
lk_mark kselftest begin $1
timeout $ks_guest_timeout /bin/${1}_64
lk_end \$?
IEOF
}

# ks_native TEST DIR: the binary on this host, under the same `timeout 60`
# and, like the VM's console, on a terminal (script(1)): with stdout a file,
# a test killed by a signal would lose its buffered output.
ks_native() {
	local t=$1 dir=$2 tmp start
	mkdir -p "$dir"
	tmp=$(mktemp -d /tmp/kselftest-x86.native.XXXXXX)
	start=${EPOCHREALTIME/./}
	(cd "$tmp" && script -q -e -c "echo '@@LK kselftest begin $t'; timeout $ks_guest_timeout $ks_cache/bin/${t}_64;
		echo \"@@LK end \$?\"" /dev/null </dev/null 2>&1 | tr -d '\r' >"$dir/console.txt")
	echo "0 $(((${EPOCHREALTIME/./} - start) / 1000)) 0 1" >"$dir/run"
	rm -rf "$tmp"
}

# ks_vm KIND MODE TEST DIR: one VM (KIND qemu or btvm; MODE a btvm user mode).
ks_vm() {
	local kind=$1 mode=$2 t=$3 dir=$4 extra=()
	if [ "$kind" = qemu ]; then
		extra=("${ks_qemu_args[@]}")
	else
		extra=(--stats)
		[ "$mode" = default ] || extra+=("--user=$mode")
		extra+=("${ks_btvm_args[@]}")
	fi
	# lk_run_vm passes DEADLINE to btvm as --timeout, and stops the VMM by
	# its PID if it is still there 2 s after DEADLINE (QEMU: at DEADLINE+2).
	lk_run_vm "$kind" "$dir" "$ks_work/$t.cpio" "$ks_cmdline" "$ks_mem" "$ks_btvm_timeout" "${extra[@]}" ||
		ks_die "lk_run_vm $kind failed for $t"
	echo "$LK_STATUS $LK_WALL_MS $LK_TIMEDOUT $LK_ENDED" >"$dir/run"
}

# ks_status DIR: the test's exit status, or what ended the run without one.
ks_status() {
	local dir=$1 st vs ms to ended
	[ -f "$dir/run" ] || { echo "-"; return; }
	read -r vs ms to ended <"$dir/run"
	st=$(grep -ao '@@LK end [0-9]*' "$dir/console.txt" | head -n 1 | awk '{print $3}')
	if [ -n "$st" ]; then
		echo "$st"
	elif ! grep -aq '@@LK kselftest begin' "$dir/console.txt"; then
		echo "no start (VMM $vs)"
	elif [ "$to" = 1 ]; then
		echo "VM hang (stopped by PID)"
	elif [ "$vs" = 124 ]; then
		echo "VM hang (--timeout)"
	else
		echo "no status (VMM $vs)"
	fi
}

# ks_fails DIR: "COUNT<TAB>first [FAIL] line" of the test's output.
ks_fails() {
	awk '/@@LK kselftest begin/ { on = 1; next } /@@LK end / { on = 0 }
		on && /\[FAIL\]/ { if (!n) first = $0; n++ } END { printf "%d\t%s\n", n, first }' \
		"$1/console.txt" 2>/dev/null | tr -d '`'
}

# ks_last DIR: the test's last line of output before the end marker, kernel
# messages and the shell's "Segmentation fault" report left out.
ks_last() {
	awk '/@@LK kselftest begin/ { on = 1; next } /@@LK end / { on = 0 }
		on && !/^\[ *[0-9]+\.[0-9]+\] / && !/Segmentation fault|^Terminated$/ && NF { last = $0 }
		END { print last }' "$1/console.txt" 2>/dev/null | tr -d '`' | sed 's/\t/ /g'
}

# --- the table --------------------------------------------------------------

# ks_cell DIR: "STATUS" or "STATUS, N [FAIL]" for the table.
ks_cell() {
	local st n
	st=$(ks_status "$1")
	n=$(ks_fails "$1" | cut -f1)
	if [ "${n:-0}" -gt 0 ]; then echo "$st, $n [FAIL]"; else echo "$st"; fi
}

ks_runners() { # the run directories' names, in table order
	[ "$ks_qemu" = 1 ] && echo qemu
	for m in $ks_modes; do echo "btvm-$m"; done
	[ "$ks_native" = 1 ] && echo native
}

# ks_table DIR TESTS...: the markdown table of the runs in DIR, the count of
# tests per btvm mode that end as under QEMU, the first [FAIL] line of each
# run that has one, and the btvm runs that outlived their --timeout.
ks_table() {
	local dir=$1 t m r qs bs row first n vs ms to ended
	shift
	row="| test |"
	local sep="|---|"
	for r in $(ks_runners); do
		case $r in
		qemu) row="$row QEMU TCG |" ;;
		native) row="$row this host natively |" ;;
		*) row="$row btvm ${r#btvm-} |" ;;
		esac
		sep="$sep---|"
	done
	echo "$row"
	echo "$sep"
	for t in "$@"; do
		row="| $t |"
		for r in $(ks_runners); do row="$row $(ks_cell "$dir/$t/$r") |"; done
		echo "$row"
	done
	echo
	if [ "$ks_qemu" = 1 ]; then
		for m in $ks_modes; do
			local same=0 ok=0 diff=""
			for t in "$@"; do
				qs=$(ks_status "$dir/$t/qemu")
				bs=$(ks_status "$dir/$t/btvm-$m")
				if [ "$qs" = "$bs" ]; then
					same=$((same + 1)) ok=$((ok + 1))
					continue
				fi
				diff="$diff $t"
				# issue 18: "or pass where QEMU fails" (mov_ss_trap)
				[ "$bs" = 0 ] && ok=$((ok + 1))
			done
			echo "btvm $m: $same of $# end as under QEMU TCG (same exit status), $ok of $# as under QEMU or pass where QEMU fails; differ:${diff:- none}"
			echo
		done
	fi
	echo "First [FAIL] line of each run that has one:"
	echo
	for t in "$@"; do
		for r in $(ks_runners); do
			first=$(ks_fails "$dir/$t/$r")
			n=${first%%$'\t'*}
			[ "${n:-0}" -gt 0 ] || continue
			echo "- $t, $r ($n): \`${first#*$'\t'}\`"
		done
	done
	if [ "$ks_qemu" = 1 ]; then
		echo
		echo "Last line of the test's output, where a run's status differs from QEMU's:"
		echo
		for t in "$@"; do
			qs=$(ks_status "$dir/$t/qemu")
			for r in $(ks_runners); do
				[ "$r" = qemu ] && continue
				[ "$(ks_status "$dir/$t/$r")" = "$qs" ] && continue
				echo "- $t, $r: \`$(ks_last "$dir/$t/$r")\` (QEMU: \`$(ks_last "$dir/$t/qemu")\`)"
			done
		done
	fi
	echo
	n=0
	local lines=""
	for t in "$@"; do
		for m in $ks_modes; do
			[ -f "$dir/$t/btvm-$m/run" ] || continue
			read -r vs ms to ended <"$dir/$t/btvm-$m/run"
			# a run that reached its end marker ended before the deadline
			[ "$ended" = 1 ] && continue
			if [ "$to" = 1 ] || [ "$ms" -gt $(((ks_btvm_timeout + 1) * 1000)) ]; then
				lines="$lines- $t, btvm $m: VMM status $vs after $ms ms$([ "$to" = 1 ] && echo ", stopped by PID")"$'\n'
				n=$((n + 1))
			fi
		done
	done
	echo "btvm VMs that outlived --timeout $ks_btvm_timeout by more than 1 s: $n"
	printf '%s' "$lines"
}

# --- main -------------------------------------------------------------------

ks_modes=${KSELFTEST_MODES:-direct translated adaptive}
ks_qemu=1
ks_native=1
ks_build_only=0
ks_btvm_args=()
ks_qemu_args=()
ks_table_only=
while [ $# -gt 0 ]; do
	case $1 in
	--modes) ks_modes=$2 && shift ;;
	--no-qemu) ks_qemu=0 ;;
	--no-native) ks_native=0 ;;
	--build-only) ks_build_only=1 ;;
	--btvm-arg) ks_btvm_args+=("$2") && shift ;;
	--qemu-arg) ks_qemu_args+=("$2") && shift ;;
	--table) ks_table_only=$2 && shift ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed -n 's/^# \{0,1\}//p' && exit 0 ;;
	-*) ks_die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
	shift
done
ks_tests=("$@")
# shellcheck disable=SC2206 # the list splits on whitespace
[ ${#ks_tests[@]} -gt 0 ] || ks_tests=($ks_all_tests)
for t in "${ks_tests[@]}"; do
	case " $(tr '\n' ' ' <<<"$ks_all_tests") " in
	*" $t "*) ;;
	*) ks_die "unknown test $t; the tests: $(tr '\n' ' ' <<<"$ks_all_tests")" ;;
	esac
done
cd "$(dirname "$0")/../.." || exit 1

ks_build
[ "$ks_build_only" = 1 ] && echo "$ks_cache/bin" && exit 0

# shellcheck source=tests/linux/lib.sh
. tests/linux/lib.sh
lk_fetch || exit 1
ks_cmdline="console=ttyS0 quiet panic=-1"
for m in $ks_modes; do
	[ "$m" = default ] && continue
	"$LK_BTVM" --help 2>&1 | grep -q -- '--user' ||
		ks_die "$LK_BTVM has no --user option for mode $m: use --modes default (or rebuild btvm)"
done

if [ -n "$ks_table_only" ]; then
	[ -f "$ks_table_only/header.md" ] || ks_die "$ks_table_only/header.md missing: not a run directory"
	cat "$ks_table_only/header.md"
	ks_table "$ks_table_only" "${ks_tests[@]}"
	exit 0
fi

ks_run=$ks_cache/runs/$(date +%Y%m%d-%H%M%S)
ks_work=$(mktemp -d /tmp/kselftest-x86.XXXXXX)
trap 'rm -rf "$ks_work"' EXIT
mkdir -p "$ks_run"
echo "kselftest-x86: logs in $ks_run" >&2
{
	echo "\`tests/linux/kselftest-x86.sh$(printf ' %q' "${ks_argv[@]}")\` on $(date -u +%Y-%m-%d), btvm $(git rev-parse --short HEAD 2>/dev/null),"
	echo "kernel $LK_RELEASE ($(lk_banner "$LK_BZIMAGE" | grep -o 'Debian [^ ]*')), $($LK_QEMU --version | head -n 1), host $(uname -r)"
	echo
} >"$ks_run/header.md"
for t in "${ks_tests[@]}"; do
	ks_init "$t" "$ks_work/init"
	lk_initramfs_new "$ks_work/root" "$ks_work/init" || exit 1
	lk_initramfs_add "$ks_work/root" "$ks_cache/bin/${t}_64" || exit 1
	lk_initramfs_pack "$ks_work/root" "$ks_work/$t.cpio" || exit 1
	for r in $(ks_runners); do
		echo "kselftest-x86: $t: $r" >&2
		case $r in
		native) ks_native "$t" "$ks_run/$t/native" ;;
		qemu) ks_vm qemu "" "$t" "$ks_run/$t/qemu" ;;
		*) ks_vm btvm "${r#btvm-}" "$t" "$ks_run/$t/$r" ;;
		esac
		echo "kselftest-x86: $t: $r: $(ks_cell "$ks_run/$t/$r") ($(cut -d' ' -f2 "$ks_run/$t/$r/run") ms)" >&2
	done
	rm -f "$ks_work/$t.cpio"
done
{
	cat "$ks_run/header.md"
	ks_table "$ks_run" "${ks_tests[@]}"
} | tee "$ks_run/table.md"
