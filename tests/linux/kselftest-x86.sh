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
#   --build DIR      btkern build directory (default build; `make -j2` first)
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
# between markers and powers off.  btvm runs with --timeout 180 inside an
# outer `timeout 200` deadline that stops it by PID; the wall time of each
# btvm run is measured against its --timeout (issue 18: no VM may outlive it
# by more than a second).  Logs of every run stay in
# $cache/kselftest-x86-6.1/runs/<date>/.
set -u

ks_all_tests="single_step_syscall sysret_ss_attrs syscall_nt test_mremap_vdso
check_initial_reg_state sigreturn iopl ioperm test_vsyscall mov_ss_trap
sigtrap_loop syscall_arg_fault fsgsbase_restore sigaltstack fsgsbase sysret_rip
syscall_numbering corrupt_xstate_header amx ldt_gdt ptrace_syscall"

ks_src_tar=${KSELFTEST_SRC:-/usr/src/linux-source-6.1.tar.xz}
ks_cache=${BTKERN_CACHE:-$HOME/.cache/btkern}/kselftest-x86-6.1
ks_guest_timeout=60  # the guest's `timeout` around the test
ks_btvm_timeout=180  # btvm --timeout
ks_outer_timeout=200 # last resort, stops the VM by PID
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

# --- one run's output -------------------------------------------------------

# The markers /init prints (and the native run prints the same way).
ks_begin="=== kselftest-x86 begin ==="
ks_end="=== kselftest-x86 end ==="

# ks_native TEST LOG: the binary on this host, under the same `timeout 60`
# and, like the VM's console, on a terminal (script(1)): with stdout a file,
# a test killed by a signal would lose its buffered output.
ks_native() {
	local t=$1 log=$2 dir
	dir=$(mktemp -d /tmp/kselftest-x86.native.XXXXXX)
	(cd "$dir" && script -q -e -c "echo '$ks_begin'; timeout $ks_guest_timeout $ks_cache/bin/${t}_64;
		echo STATUS=\$?; echo '$ks_end'" /dev/null </dev/null >"$log" 2>&1)
	rm -rf "$dir"
}

# ks_status LOG: the test's exit status between the markers, or what ended
# the run without one.  The RUN file next to the log holds "rc wall_ms" of
# the VM process (rc 124 from btvm = its --timeout; "killed" = the outer
# deadline stopped it).
ks_status() {
	local log=$1 st rc
	st=$(tr -d '\r' <"$log" 2>/dev/null | sed -n "/^$ks_begin\$/,/^$ks_end\$/s/^STATUS=\([0-9]*\)\$/\1/p" | tail -n 1)
	if [ -n "$st" ]; then
		echo "$st"
		return
	fi
	rc=$(cut -d' ' -f1 "$log.run" 2>/dev/null)
	if ! tr -d '\r' <"$log" 2>/dev/null | grep -qx "$ks_begin"; then
		echo "no-start(rc=${rc:-?})"
	elif [ "$rc" = killed ]; then
		echo "HANG(outer)"
	elif [ "$rc" = 124 ]; then
		echo "HANG(timeout)"
	else
		echo "no-status(rc=${rc:-?})"
	fi
}

# ks_fails LOG: "COUNT<TAB>first [FAIL] line" of the test's output.
ks_fails() {
	tr -d '\r' <"$1" 2>/dev/null | sed -n "/^$ks_begin\$/,/^$ks_end\$/p" |
		awk '/\[FAIL\]/ { if (!n) first = $0; n++ } END { printf "%d\t%s\n", n, first }'
}

# --- the table --------------------------------------------------------------

# ks_cell LOG: "STATUS" or "STATUS, N [FAIL]" for the table.
ks_cell() {
	local st n
	st=$(ks_status "$1")
	n=$(ks_fails "$1" | cut -f1)
	if [ "${n:-0}" -gt 0 ]; then echo "$st, $n [FAIL]"; else echo "$st"; fi
}

# ks_table DIR TESTS...: the markdown table of the runs in DIR, the count of
# tests per btvm mode that end as under QEMU, the first [FAIL] line of each
# run that has one, and the btvm runs that outlived their --timeout.
ks_table() {
	local dir=$1 t m r qs bs row hdr sep first n
	shift
	hdr="| test |"
	sep="|---|"
	[ "$ks_qemu" = 1 ] && hdr="$hdr QEMU TCG |" && sep="$sep---|"
	for m in $ks_modes; do hdr="$hdr btvm $m |" && sep="$sep---|"; done
	[ "$ks_native" = 1 ] && hdr="$hdr native |" && sep="$sep---|"
	echo "$hdr"
	echo "$sep"
	for t in "$@"; do
		row="| $t |"
		[ "$ks_qemu" = 1 ] && row="$row $(ks_cell "$dir/$t.qemu.log") |"
		for m in $ks_modes; do
			row="$row $(ks_cell "$dir/$t.btvm-$m.log") |"
		done
		[ "$ks_native" = 1 ] && row="$row $(ks_cell "$dir/$t.native.log") |"
		echo "$row"
	done
	echo
	if [ "$ks_qemu" = 1 ]; then
		for m in $ks_modes; do
			local same=0 ok=0
			for t in "$@"; do
				qs=$(ks_status "$dir/$t.qemu.log")
				bs=$(ks_status "$dir/$t.btvm-$m.log")
				[ "$qs" = "$bs" ] && same=$((same + 1)) && ok=$((ok + 1)) && continue
				# issue 18: "or pass where QEMU fails" (mov_ss_trap)
				[ "$bs" = 0 ] && ok=$((ok + 1))
			done
			echo "btvm $m: $same of $# end as under QEMU TCG (exit status); $ok of $# as under QEMU or pass where QEMU fails"
		done
		echo
	fi
	echo "First [FAIL] line of each run that has one:"
	echo
	for t in "$@"; do
		for r in qemu $(for m in $ks_modes; do echo "btvm-$m"; done) native; do
			[ -f "$dir/$t.$r.log" ] || continue
			first=$(ks_fails "$dir/$t.$r.log")
			n=${first%%$'\t'*}
			[ "$n" -gt 0 ] || continue
			echo "- $t, $r ($n): \`${first#*$'\t'}\`"
		done
	done
	echo
	echo "btvm runs that outlived --timeout $ks_btvm_timeout by more than 1 s:"
	n=0
	for t in "$@"; do
		for m in $ks_modes; do
			r=$dir/$t.btvm-$m.log.run
			[ -f "$r" ] || continue
			# "rc wall_ms"
			read -r rc ms <"$r"
			if [ "$rc" = killed ] || [ "$ms" -gt $(((ks_btvm_timeout + 1) * 1000)) ]; then
				echo "- $t, $m: exit $rc after $ms ms"
				n=$((n + 1))
			fi
		done
	done
	echo "$n in all"
}

# --- main -------------------------------------------------------------------

ks_modes=${KSELFTEST_MODES:-direct translated adaptive}
ks_qemu=1
ks_native=1
ks_build_only=0
ks_bt_build=build
while [ $# -gt 0 ]; do
	case $1 in
	--modes) ks_modes=$2 && shift ;;
	--no-qemu) ks_qemu=0 ;;
	--no-native) ks_native=0 ;;
	--build-only) ks_build_only=1 ;;
	--build) ks_bt_build=$2 && shift ;;
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

ks_run=$ks_cache/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$ks_run"
echo "kselftest-x86: logs in $ks_run" >&2
for t in "${ks_tests[@]}"; do
	if [ "$ks_native" = 1 ]; then
		echo "kselftest-x86: $t natively" >&2
		ks_native "$t" "$ks_run/$t.native.log"
	fi
done
ks_table "$ks_run" "${ks_tests[@]}" | tee "$ks_run/table.md"
