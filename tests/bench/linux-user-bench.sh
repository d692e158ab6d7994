#!/usr/bin/env bash
# Linux userland benchmark (not a test; an explicit step, not in `make
# check`: it downloads Debian's kernel, about 1 GB once).  Debian 12's
# unmodified cloud kernel boots a busybox initramfs whose /init runs timed
# phases, under btvm (the debug vmlinux; once per --user mode), under QEMU
# TCG (the bzImage of the same build, same memory, same initramfs, same
# command line) and natively (the same phase script and binaries on the
# host, where meaningful), R rounds each, interleaved; medians of the
# guest-timed phases with failed runs counted, btvm/QEMU ratios per phase
# and for the whole.
#
#   tests/bench/linux-user-bench.sh [options]
#     --build DIR       btvm's build directory (default build)
#     --runs R          rounds (default 3)
#     --modes "M ..."   btvm --user modes (default "direct translated
#                       adaptive"); "default" passes no --user flag
#     --n N             workload scale (default 100; see the phases below)
#     --cpu C           pin every VMM and the native runs to CPU C (default 1)
#     --no-pin          pin nothing
#     --no-qemu, --no-native
#     --btvm-arg ARG    one more btvm argument (repeatable), e.g. --no-sandbox
#     --phases "P ..."  a subset of: syscall forkexec pipes pagefault tmpfs module
#                       compute
#     --mem SIZE        guest RAM for both VMMs (default 512M)
#     --deadline S      stop a VM after S seconds (default 600)
#     --keep DIR        keep the consoles and results in DIR
#     --report-only     with --keep DIR and the options of that run: print
#                       the report of its kept results without running
#
# The phases (each timed in the guest with CLOCK_MONOTONIC by
# tests/linux/lk-time.c, which forks `sh /phases.sh NAME` and waits):
#   syscall    200*N getppid calls in a C loop (also: µs per call)
#   forkexec   N fork+exec of a tiny static program (tests/linux/lk-nop.c)
#              from a busybox sh loop (also: ms per fork+exec)
#   pipes      seq 200*N | awk | sort -n | md5sum, three times, and
#              seq | sed | sort | uniq -c | sort -rn | head
#   pagefault  64*N anonymous pages touched once each (also: µs per page)
#   tmpfs      a N/6 MB file written with dd, copied and hashed, then N small
#              files written and read back
#   module     N/10 rounds of insmod and rmmod of $MODULES (not natively)
#   compute    user code alone: busybox awk iterating 10000*N times over
#              integer arithmetic, no system call inside the loop (the
#              issue's "compute phases >= 0.95x native")
# The pipes, tmpfs and compute phases print checksums, which must match across every
# run and machine (a mismatch fails that run's phase).
set -u
cd "$(dirname "$0")/../.." || exit 1
build=build runs=3 modes="direct translated adaptive" n=100 cpu=1 do_pin=1
qemu=1 native=1 btvm_args=() mem=512M deadline=600 keep='' report_only=0
phases="syscall forkexec pipes pagefault tmpfs module compute"
# small modules with no dependencies that neither machine's devices
# matter to (see docs/linux-bench.md for why not exfat or squashfs)
MODULES=${MODULES:-"md4 crc_itu_t dummy sha3_generic"}
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2 && shift ;;
	--runs) runs=$2 && shift ;;
	--modes) modes=$2 && shift ;;
	--n) n=$2 && shift ;;
	--cpu) cpu=$2 && shift ;;
	--no-pin) do_pin=0 ;;
	--no-qemu) qemu=0 ;;
	--no-native) native=0 ;;
	--btvm-arg) btvm_args+=("$2") && shift ;;
	--phases) phases=$2 && shift ;;
	--mem) mem=$2 && shift ;;
	--deadline) deadline=$2 && shift ;;
	--keep) keep=$2 && shift ;;
	--report-only) report_only=1 ;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "linux-user-bench: unknown option '$1' (--help lists them)" >&2
		exit 2
		;;
	esac
	shift
done
for v in "$runs" "$n" "$deadline"; do
	case $v in '' | *[!0-9]* | 0)
		echo "linux-user-bench: '$v' is not a positive number" >&2
		exit 2
		;;
	esac
done
. tests/linux/lib.sh
if [ "$report_only" = 1 ] && { [ -z "$keep" ] || [ ! -d "$keep/res" ]; }; then
	echo "linux-user-bench: --report-only needs --keep DIR of an earlier run" >&2
	exit 2
fi
LK_BTVM=$build/bin/btvm
[ -x "$LK_BTVM" ] || { echo "linux-user-bench: $LK_BTVM missing: make -j2" >&2; exit 1; }
lk_fetch || exit 1
lk_workdir linux-user-bench "$keep" || exit 1
if [ "$do_pin" = 1 ]; then
	LK_PIN="taskset -c $cpu"
	pinned="pinned: btvm (with its stubs), QEMU and the native runs all on CPU $cpu (taskset -c $cpu)"
else
	LK_PIN=
	pinned="not pinned: btvm, QEMU and the native runs float over the host's CPUs"
fi

# --- the guest: programs, phase script, /init, initramfs ---------------------
lk_cc_static "$work/lk-time" tests/linux/lk-time.c || exit 1
gcc -static -nostdlib -O2 -o "$work/lk-nop" tests/linux/lk-nop.c || exit 1
nsys=$((200 * n)) nfork=$n npipe=$((200 * n)) npages=$((64 * n))
filemb=$(((n + 5) / 6)) nfiles=$n nmod=$(((n + 9) / 10)) ncomp=$((10000 * n))
cat >"$work/phases.sh" <<EOF
#!/bin/sh
# generated by tests/bench/linux-user-bench.sh (--n $n): run with no
# argument for every phase, each timed by lk-time; with a NAME for one
PHASES="$phases"
MODULES="$MODULES"
T=\${LK_TMP:-/tmp}
ph_syscall() { lk-time getppid $nsys; }
ph_forkexec() {
	i=0
	while [ \$i -lt $nfork ]; do
		lk-nop || return 1
		i=\$((i + 1))
	done
}
ph_pipes() {
	for k in 1 2 3; do
		seq 1 $npipe | awk -v k=\$k '{ print (\$1 * 7919 * k) % 10007, \$1 }' | sort -n | md5sum
	done >\$T/pipes.out
	seq 1 $npipe | sed 's/[13579]\$/odd/' | sort | uniq -c | sort -rn | head -n 3 >>\$T/pipes.out
	echo "@@LK check pipes \$(md5sum <\$T/pipes.out | cut -c1-32)"
	rm -f \$T/pipes.out
}
ph_pagefault() { lk-time touch $npages; }
ph_tmpfs() {
	d=\$T/lkfs
	mkdir -p \$d || return 1
	dd if=/dev/zero of=\$d/big bs=64k count=$((filemb * 16)) 2>/dev/null || return 1
	cp \$d/big \$d/big2 || return 1
	s1=\$(md5sum <\$d/big2 | cut -c1-32)
	i=0
	while [ \$i -lt $nfiles ]; do
		echo "file \$i" >\$d/f\$i
		i=\$((i + 1))
	done
	s2=\$(cat \$d/f* | md5sum | cut -c1-32)
	rm -rf \$d
	echo "@@LK check tmpfs \$s1 \$s2"
}
ph_module() {
	. /lib/lk.sh
	i=0
	while [ \$i -lt $nmod ]; do
		for m in \$MODULES; do lk_insmod \$m || return 1; done
		for m in \$MODULES; do lk_rmmod \$m || return 1; done
		i=\$((i + 1))
	done
}
ph_compute() {
	awk -v n=$ncomp 'BEGIN { s = 0; for (i = 1; i <= n; i++) s = (s * 31 + i % 7) % 1000003; print "@@LK check compute " s }'
}
if [ \$# -gt 0 ]; then
	ph_\$1
	exit \$?
fi
st=0
for p in \$PHASES; do
	if [ "\$p" = module ] && [ -n "\${LK_NATIVE:-}" ]; then continue; fi
	lk-time run \$p sh \$0 \$p || st=1
done
exit \$st
EOF
cat >"$work/init" <<'EOF'
#!/bin/sh
. /lib/lk.sh
lk_setup
lk_mark start
LK_TMP=/tmp sh /phases.sh
lk_end $?
EOF
lk_initramfs_new "$work/root" "$work/init" || exit 1
lk_initramfs_add "$work/root" "$work/lk-time" || exit 1
lk_initramfs_add "$work/root" "$work/lk-nop" || exit 1
install -m 755 "$work/phases.sh" "$work/root/phases.sh"
case " $phases " in *" module "*)
	# shellcheck disable=SC2086 # a list of names
	lk_initramfs_add_modules "$work/root" $MODULES || exit 1
	;;
esac
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1
cmdline=$LK_CMDLINE

# the native side: the same busybox, programs and phase script on the host
mkdir -p "$work/nbin"
for a in $("$LK_BUSYBOX" --list); do ln -sf "$LK_BUSYBOX" "$work/nbin/$a"; done
cp "$work/lk-time" "$work/lk-nop" "$work/nbin/"

# --- running ------------------------------------------------------------------
# Each run leaves $work/res/LABEL.I: "phase NAME NS|FAIL", "micro KEY V",
# "check NAME V", "boot MS", "clock RATIO" (guest time / host time over the
# phases), "status TEXT".
mkdir -p "$work/res"
user_flag_ok=0
"$LK_BTVM" run --help 2>&1 | grep -q -- '--user' && user_flag_ok=1
labels=()
[ "$native" = 1 ] && labels+=(native)
[ "$qemu" = 1 ] && labels+=(qemu)
for m in $modes; do labels+=("btvm:$m"); done

parse() { # CONSOLE OUT: the result file of one run from its console
	local con=$1 res=$2 p line
	: >"$res"
	for p in $phases; do
		line=$(lk_marks "$con" phase | awk -v p="$p" '$1 == p { print $2, $3; exit }' | tr -d '\r')
		if [ -n "$line" ] && [ "${line#* }" = 0 ]; then
			echo "phase $p ${line% *}" >>"$res"
		else
			echo "phase $p FAIL" >>"$res"
		fi
	done
	lk_marks "$con" micro | tr -d '\r' | sed 's/^/micro /' >>"$res"
	lk_marks "$con" check | tr -d '\r' | awk '{ k = $1; $1 = ""; print "check", k, substr($0, 2) }' >>"$res"
}

run_native() { # I
	local res=$work/res/native.$1 tmp pinc=()
	read -r -a pinc <<<"$LK_PIN"
	tmp=$(mktemp -d /dev/shm/lkbench.XXXXXX 2>/dev/null || mktemp -d /tmp/lkbench.XXXXXX)
	PATH=$work/nbin LK_TMP=$tmp LK_NATIVE=1 "${pinc[@]}" "$work/nbin/sh" "$work/phases.sh" \
		>"$work/native.$1.out" 2>&1
	rm -rf "$tmp"
	parse "$work/native.$1.out" "$res"
	echo "status ran" >>"$res"
}

run_vm() { # LABEL I
	local label=$1 i=$2 kind mode extra=() res out s e ck
	res=$work/res/$label.$i
	out=$work/vm.${label/:/-}.$i
	case $label in
	qemu) kind=qemu ;;
	btvm:*)
		kind=btvm mode=${label#btvm:}
		extra=("${btvm_args[@]}")
		if [ "$mode" != default ]; then
			if [ "$user_flag_ok" = 0 ]; then
				echo "status this btvm has no --user option" >"$res"
				return
			fi
			extra+=("--user=$mode")
		fi
		;;
	esac
	lk_run_vm "$kind" "$out" "$work/initrd.cpio" "$cmdline" "$mem" "$deadline" "${extra[@]}"
	parse "$out/console.txt" "$res"
	s=$(lk_stamp_ms "$out" start)
	e=$(lk_stamp_ms "$out" end)
	[ -n "$s" ] && echo "boot $((s - LK_START_MS))" >>"$res"
	if [ -n "$s" ] && [ -n "$e" ] && [ "$e" -gt "$s" ]; then
		ck=$(awk -v h=$((e - s)) '$1 == "phase" && $3 != "FAIL" { g += $3 } END { printf "clock %.3f", g / 1e6 / h }' "$res")
		echo "$ck" >>"$res"
	fi
	if [ "$LK_ENDED" = 1 ] && [ "$LK_END_CODE" = 0 ]; then
		echo "status ended" >>"$res"
	else
		local why=""
		if [ "$LK_STOPPED" = 0 ] && [ "$LK_STATUS" -gt 128 ]; then
			why=" (killed by SIG$(kill -l $((LK_STATUS - 128))))"
		fi
		echo "status FAILED: VMM status $LK_STATUS$why, end marker ${LK_ENDED}, code '$LK_END_CODE'; $(tail -n 1 "$out/stderr")" >>"$res"
	fi
}

echo "linux-user-bench: $LK_RELEASE, busybox $(cut -d' ' -f2 "$LK_BUSYBOX.package"), --n $n, $runs rounds, mem $mem"
echo "  $pinned"
echo "  btvm extra arguments: ${btvm_args[*]:-(none)}; modules: $MODULES"
echo "  host load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other jobs share them)"
[ "$report_only" = 1 ] && echo "  (the report of the results kept in $keep; the load averages are today's)"
for i in $(seq 1 "$runs"); do
	[ "$report_only" = 1 ] && break
	for l in "${labels[@]}"; do
		s=$(_lk_now_ms)
		if [ "$l" = native ]; then run_native "$i"; else run_vm "$l" "$i"; fi
		echo "  round $i $l: $(grep '^status' "$work/res/$l.$i" | cut -d' ' -f2-) ($((($(_lk_now_ms) - s) / 1000)) s)" >&2
	done
done

# a check value differing from the first one seen fails that run's phase
for f in "$work"/res/*; do
	grep '^check ' "$f" | while read -r _ k v; do
		# the reference: QEMU's first run, else the native one, else any
		ref=$(cat "$work"/res/qemu.* "$work"/res/native.* "$work"/res/* 2>/dev/null |
			grep -m 1 "^check $k " | cut -d' ' -f3-)
		if [ "$v" != "$ref" ]; then
			echo "  $(basename "$f"): $k checksum '$v' differs from '$ref'" >&2
			sed -i "s/^phase $k .*/phase $k FAIL/" "$f"
		fi
	done
done

# --- the report ---------------------------------------------------------------
# median over the rounds, a failed run counting as slower than every success
med() { # LABEL KIND KEY: prints "VALUE FAILED" (VALUE may be FAIL or -)
	local l=$1 k=$2 key=$3 f v vals=() failed=0 total=0
	for f in "$work/res/$l".*; do
		[ -e "$f" ] || continue
		total=$((total + 1))
		v=$(awk -v k="$k" -v key="$key" '$1 == k && $2 == key { print $3; exit }' "$f")
		if [ -z "$v" ] || [ "$v" = FAIL ]; then
			failed=$((failed + 1))
			vals+=(inf)
		else
			vals+=("$v")
		fi
	done
	[ "$total" = 0 ] && { echo "- 0"; return; }
	printf '%s\n' "${vals[@]}" | sort -g | awk -v f="$failed" \
		'{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; print (m == "inf" ? "FAIL" : m), f }'
}
whole() { # per run: the sum of the phases (FAIL if any failed)
	local f w
	for f in "$work/res/$1".*; do
		w=$(awk -v ph="$phases" -v lab="$1" 'BEGIN { n = split(ph, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1
			if (lab == "native") delete want["module"] }
			$1 == "phase" && ($2 in want) { if ($3 == "FAIL") bad = 1; s += $3; seen++ }
			END { c = 0; for (k in want) c++; if (bad || seen < c) print "phase whole FAIL"; else printf "phase whole %.0f\n", s }' "$f")
		echo "$w" >>"$f"
	done
}
for l in "${labels[@]}"; do whole "$l"; done

fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "FAIL" || v == "-" || v == "") print v; else printf "%.1f", v / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0 && a != "FAIL" && b != "FAIL") printf "%.2f", a / b; else print "-" }'; }
echo
echo "Guest-timed phases, ms (median of $runs; [k] = k runs failed and counted as slowest):"
hdr=$(printf '%-10s' phase)
for l in "${labels[@]}"; do hdr+=$(printf ' %16s' "$l"); done
for l in "${labels[@]}"; do case $l in btvm:*) hdr+=$(printf ' %12s' "${l#btvm:}/QEMU") ;; esac; done
echo "$hdr"
for p in $phases whole; do
	row=$(printf '%-10s' "$p")
	for l in "${labels[@]}"; do
		if [ "$l" = native ] && [ "$p" = module ]; then
			row+=$(printf ' %16s' "-")
			continue
		fi
		read -r v f <<<"$(med "$l" phase "$p")"
		cell=$(fmt_ms "$v")
		[ "$f" != 0 ] && cell="$cell [$f]"
		row+=$(printf ' %16s' "$cell")
	done
	read -r qv _ <<<"$(med qemu phase "$p")"
	for l in "${labels[@]}"; do
		case $l in btvm:*)
			read -r bv _ <<<"$(med "$l" phase "$p")"
			row+=$(printf ' %12s' "$(ratio "$bv" "$qv")")
			;;
		esac
	done
	echo "$row"
done
echo "  (whole = the sum of the phases; native has no module phase, so its whole omits it)"
echo "  host load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
micro() { # KEY TITLE UNIT
	local l v f line="  $2:"
	for l in "${labels[@]}"; do
		read -r v f <<<"$(med "$l" micro "$1")"
		[ "$f" != 0 ] && v="$v [$f]"
		line+=" $l $v $3;"
	done
	echo "${line%;}"
}
has() { case " $phases " in *" $1 "*) return 0 ;; esac; return 1; }
has syscall && micro getppid_us "getppid round trip" µs
has pagefault && micro touch_us "first-touch page (mmap, write, munmap)" µs
for l in "${labels[@]}"; do # fork+exec: the forkexec phase over its rounds
	for f in "$work/res/$l".*; do
		fe=$(awk -v n="$nfork" '$1 == "phase" && $2 == "forkexec" && $3 != "FAIL" { printf "micro forkexec_ms %.3f", $3 / 1e6 / n }' "$f")
		[ -n "$fe" ] && echo "$fe" >>"$f"
	done
done
has forkexec && micro forkexec_ms "fork+exec of lk-nop from busybox sh" ms
echo
for l in "${labels[@]}"; do
	[ "$l" = native ] && continue
	bt=$(for f in "$work/res/$l".*; do awk '$1 == "boot" { print $2 }' "$f"; done | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }')
	ck=$(for f in "$work/res/$l".*; do awk '$1 == "clock" { print $2 }' "$f"; done | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }')
	failed=$(grep -L '^status ended' "$work/res/$l".* | wc -l)
	echo "  $l: wall to /init $bt ms (host clock); guest/host clock over the phases $ck; $failed of $runs runs failed"
	grep -h '^status FAILED' "$work/res/$l".* | sort | uniq -c | sed 's/^/    /'
	grep -h '^status this btvm' "$work/res/$l".* | sort -u | sed 's/^status /    /'
done
