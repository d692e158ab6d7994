#!/usr/bin/env bash
# Linux kernel-compute benchmark (not a test; an explicit step, not in `make
# check`).  Debian 12's unmodified cloud kernel boots a busybox initramfs
# whose /init runs the kernel's own crypto speed tests, `insmod tcrypt.ko
# mode=300 alg=ALG sec=S`, for a few hash algorithms implemented in generic
# C (vmlinux code or a module's), under btvm (the debug vmlinux) and QEMU
# TCG (the bzImage of the same build, same memory, initramfs and command
# line), R rounds, alternating; medians with failed runs counted, and the
# btvm/QEMU speed ratio per algorithm.  Pure kernel code, measured inside
# the guest: issue 12's "Linux kernel-heavy measure".
#
#   tests/bench/linux-kernel-bench.sh [options]
#     --build DIR       btvm's build directory (default build)
#     --runs R          rounds (default 3)
#     --algs "A ..."    tcrypt algorithms, each ALG or ALG:MODULE when the
#                       algorithm lives in a module (loaded first); default
#                       "sha256-generic sha3-256-generic:sha3_generic
#                       crc32c-generic"
#     --sec S           seconds per tcrypt test (default 1; 0 makes tcrypt
#                       count TSC cycles instead, which are not comparable
#                       across the two machines: see below)
#     --cpu C           pin both VMMs to CPU C (default 1)
#     --no-pin          pin nothing
#     --no-qemu         btvm alone
#     --base DIR        also run DIR's btvm (another build, e.g. the commit
#                       before a change) in the same rounds, as "base": an
#                       A/B under the same load
#     --btvm-arg ARG    one more btvm argument (repeatable), e.g. --stats
#     --mem SIZE        guest RAM for both VMMs (default 512M)
#     --deadline S      stop a VM after S seconds (default 900)
#     --keep DIR        keep the consoles and results in DIR
#
# The measure.  tcrypt's mode 300 with alg= runs its generic hash speed
# template: 22 tests from 16-byte blocks (16 bytes per update) to 8 KiB
# blocks (8 KiB per update); with sec=S each test counts how many whole
# hashes it completes before S seconds of jiffies have passed and prints
# "opers/sec".  Jiffies advance with each VM's guest clock, which both
# VMMs drive from the host's clock; the script checks that by timing each
# algorithm's insmod twice, with the guest's /proc/uptime and with the host
# stamps of the console lines around it ("guest/host clock", 1.000 when the
# guest's second is the host's).  With sec=0 tcrypt prints TSC cycles,
# which QEMU TCG scales to the host's TSC and btvm may not: not used here.
# tcrypt always fails its insmod (EAGAIN, by design); its results are read
# from the kernel log (dmesg), so `quiet` does not hide them.
#
# Reported per algorithm: the median over the runs of the geometric mean
# of opers/sec over the 22 tests, of the 16-byte test (call overhead:
# init/update/final for 16 bytes) and of the 8 KiB test (the compression
# loop), for QEMU and btvm, and speed = btvm opers/sec / QEMU opers/sec
# (issue 12's target is >= 2).  A run whose algorithm printed fewer than
# 22 results fails for that algorithm and counts as slower than every
# success.  There is no native column: this is kernel code, which cannot
# run on the host as it is.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=build runs=3 sec=1 cpu=1 do_pin=1 qemu=1 btvm_args=() mem=512M deadline=900 keep='' base=''
algs="sha256-generic sha3-256-generic:sha3_generic crc32c-generic"
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2 && shift ;;
	--runs) runs=$2 && shift ;;
	--algs) algs=$2 && shift ;;
	--sec) sec=$2 && shift ;;
	--cpu) cpu=$2 && shift ;;
	--no-pin) do_pin=0 ;;
	--no-qemu) qemu=0 ;;
	--base) base=$2 && shift ;;
	--btvm-arg) btvm_args+=("$2") && shift ;;
	--mem) mem=$2 && shift ;;
	--deadline) deadline=$2 && shift ;;
	--keep) keep=$2 && shift ;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "linux-kernel-bench: unknown option '$1' (--help lists them)" >&2
		exit 2
		;;
	esac
	shift
done
for v in "$runs" "$deadline"; do
	case $v in '' | *[!0-9]* | 0)
		echo "linux-kernel-bench: '$v' is not a positive number" >&2
		exit 2
		;;
	esac
done
case $sec in '' | *[!0-9]*)
	echo "linux-kernel-bench: --sec '$sec' is not a number" >&2
	exit 2
	;;
esac
. tests/linux/lib.sh
for b in "$build" $base; do
	[ -x "$b/bin/btvm" ] || { echo "linux-kernel-bench: $b/bin/btvm missing: make BUILD=$b" >&2; exit 1; }
done
LK_BTVM=$build/bin/btvm
lk_fetch || exit 1
lk_workdir linux-kernel-bench "$keep" || exit 1
if [ "$do_pin" = 1 ]; then
	LK_PIN="taskset -c $cpu"
	pinned="pinned: btvm (with its stubs) and QEMU on CPU $cpu (taskset -c $cpu)"
else
	LK_PIN=
	pinned="not pinned: btvm and QEMU float over the host's CPUs"
fi

# --- the guest ----------------------------------------------------------------
names='' mods='tcrypt'
for a in $algs; do
	names="$names ${a%%:*}"
	case $a in *:*) mods="$mods ${a#*:}" ;; esac
done
# /init: for each algorithm its module, then tcrypt, between two markers
# carrying the guest's uptime; the results from dmesg, one marker a line
{
	echo '#!/bin/sh'
	echo '. /lib/lk.sh'
	echo 'lk_setup'
	echo 'lk_mark start'
	echo 'st=0'
	for a in $algs; do
		n=${a%%:*}
		case $a in *:*) echo "lk_insmod ${a#*:} || st=1" ;; esac
		cat <<EOF
dmesg -c >/dev/null
lk_mark tcs.$n \$(cut -d' ' -f1 /proc/uptime)
insmod \$(cat /lib/modules/lk/tcrypt.order) mode=300 alg=$n sec=$sec 2>/dev/null
lk_mark tce.$n \$(cut -d' ' -f1 /proc/uptime)
dmesg | sed 's/^/@@LK tc $n /'
EOF
	done
	echo 'lk_end $st'
} >"$work/init"
lk_initramfs_new "$work/root" "$work/init" || exit 1
# shellcheck disable=SC2086 # a list of names
lk_initramfs_add_modules "$work/root" $mods || exit 1
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1

# --- running ------------------------------------------------------------------
# Each run leaves $work/res/LABEL.I: "alg NAME GEOMEAN OPS16 OPS8192 COUNT"
# (FAIL instead of the numbers when it printed fewer than 22 results),
# "clock NAME RATIO" (guest seconds / host seconds over that insmod),
# "status TEXT".
mkdir -p "$work/res"
labels=()
[ "$qemu" = 1 ] && labels+=(qemu)
labels+=(btvm)
[ -n "$base" ] && labels+=(base)

parse() { # CONSOLE OUTDIR RES
	local con=$1 out=$2 res=$3 n gs ge hs he
	: >"$res"
	for n in $names; do
		lk_marks "$con" "tc $n" | tr -d '\r' | awk -v n="$n" '
			# tcrypt prints "testing speed of ..." a section, then per test
			# "test  0 (   16 byte blocks,   16 bytes per update,   1 updates): "
			# and "  123 opers/sec, ...", on one line or, when the
			# continuation was broken, on two
			/testing speed of/ { sec++ }
			/ test +[0-9]+ \(/ { s = $0; sub(/.* test +[0-9]+ \( */, "", s); split(s, w, /[^0-9]+/); b = w[1]; p = w[2] }
			/ opers\/sec/ {
				o = $0; sub(/ opers\/sec.*/, "", o); sub(/.*[^0-9]/, "", o)
				if (o + 0 <= 0) next
				c++; lg += log(o)
				if (sec == 1 && b == 16 && p == 16) o16 = o
				if (sec == 1 && b == 8192 && p == 8192) o8k = o }
			END { if (c >= 22 && o16 && o8k) printf "alg %s %.0f %d %d %d\n", n, exp(lg / c), o16, o8k, c
			      else printf "alg %s FAIL - - %d\n", n, c }' >>"$res"
		gs=$(lk_marks "$con" "tcs.$n" | tr -d '\r' | head -n 1)
		ge=$(lk_marks "$con" "tce.$n" | tr -d '\r' | head -n 1)
		hs=$(grep -a -m 1 "@@LK tcs.$n " "$out/console.stamped" | cut -f 1)
		he=$(grep -a -m 1 "@@LK tce.$n " "$out/console.stamped" | cut -f 1)
		if [ -n "$gs" ] && [ -n "$ge" ] && [ -n "$hs" ] && [ -n "$he" ]; then
			awk -v n="$n" -v gs="$gs" -v ge="$ge" -v hs="$hs" -v he="$he" \
				'BEGIN { if (he > hs) printf "clock %s %.3f\n", n, (ge - gs) / (he - hs) }' >>"$res"
		fi
	done
}

run_vm() { # LABEL I
	local label=$1 i=$2 res out extra=()
	res=$work/res/$label.$i
	out=$work/vm.$label.$i
	local kind=$label
	LK_BTVM=$build/bin/btvm
	case $label in
	btvm) extra=("${btvm_args[@]}") ;;
	base)
		kind=btvm extra=("${btvm_args[@]}")
		LK_BTVM=$base/bin/btvm
		;;
	esac
	lk_run_vm "$kind" "$out" "$work/initrd.cpio" "$LK_CMDLINE" "$mem" "$deadline" "${extra[@]}"
	parse "$out/console.txt" "$out" "$res"
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

echo "linux-kernel-bench: $LK_RELEASE, tcrypt mode=300 sec=$sec, algorithms:$names, $runs rounds, mem $mem"
echo "  $pinned"
echo "  btvm extra arguments: ${btvm_args[*]:-(none)}"
[ -n "$base" ] && echo "  btvm: $build/bin/btvm; base: $base/bin/btvm"
echo "  host load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other jobs share them)"
for i in $(seq 1 "$runs"); do
	for l in "${labels[@]}"; do
		s=$(_lk_now_ms)
		run_vm "$l" "$i"
		echo "  round $i $l: $(grep '^status' "$work/res/$l.$i" | cut -d' ' -f2-) ($((($(_lk_now_ms) - s) / 1000)) s)" >&2
	done
done

# --- the report ---------------------------------------------------------------
# median over the runs of field F of "alg NAME ..." lines, a failed run
# counting as slower (fewer opers/sec) than every success: "VALUE FAILED"
med() { # LABEL NAME F
	local f v vals=() failed=0 total=0
	for f in "$work/res/$1".*; do
		[ -e "$f" ] || continue
		total=$((total + 1))
		v=$(awk -v n="$2" -v k="$3" '$1 == "alg" && $2 == n { print $k; exit }' "$f")
		if [ -z "$v" ] || [ "$v" = FAIL ]; then
			failed=$((failed + 1))
			vals+=(-1)
		else
			vals+=("$v")
		fi
	done
	[ "$total" = 0 ] && { echo "- 0"; return; }
	# the lower median: with failures counted as lowest
	printf '%s\n' "${vals[@]}" | sort -g -r | awk -v f="$failed" \
		'{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; print (m < 0 ? "FAIL" : m), f }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "FAIL" && b != "FAIL" && a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
cell() { # VALUE FAILED
	local c=$1
	[ "$2" != 0 ] && c="$c [$2]"
	echo "$c"
}
echo
echo "tcrypt opers/sec in the guest (median of $runs; [k] = k runs failed and counted as slowest);"
echo "speed = btvm / QEMU (issue 12's target: >= 2; no native figure: kernel code cannot run on the host)"
hdr=$(printf '%-20s %-8s %12s %12s %8s' algorithm test QEMU btvm speed)
[ -n "$base" ] && hdr+=$(printf ' %12s %8s %9s' base "base sp." btvm/base)
echo "$hdr"
for n in $names; do
	for t in "geomean:3" "16 B:4" "8 KiB:5"; do
		k=${t#*:}
		read -r qv qf <<<"$(med qemu "$n" "$k")"
		read -r bv bf <<<"$(med btvm "$n" "$k")"
		row=$(printf '%-20s %-8s %12s %12s %8s' "$n" "${t%:*}" "$(cell "$qv" "$qf")" "$(cell "$bv" "$bf")" "$(ratio "$bv" "$qv")")
		if [ -n "$base" ]; then
			read -r av af <<<"$(med base "$n" "$k")"
			row+=$(printf ' %12s %8s %9s' "$(cell "$av" "$af")" "$(ratio "$av" "$qv")" "$(ratio "$bv" "$av")")
		fi
		echo "$row"
	done
done
echo "  (geomean: over tcrypt's 22 tests, 16-byte to 8 KiB blocks; 16 B: 16-byte blocks, one"
echo "   update; 8 KiB: 8 KiB blocks, one update)"
echo "  host load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for l in "${labels[@]}"; do
	ck=$(cat "$work/res/$l".* 2>/dev/null | awk '$1 == "clock" { print $3 }' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%s-%s", a[1], a[NR]; else print "-" }')
	failed=$(grep -L '^status ended' "$work/res/$l".* | wc -l)
	echo "  $l: guest/host clock over each insmod $ck; $failed of $runs runs failed"
	grep -h '^status FAILED' "$work/res/$l".* | sort | uniq -c | sed 's/^/    /'
done
