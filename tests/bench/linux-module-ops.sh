#!/bin/bash
# Module loads and unloads one by one (not a test; an explicit step, not in
# `make check`): the module phase of tests/bench/linux-user-bench.sh split
# into its operations.  Debian's cloud kernel boots a busybox initramfs whose
# /init runs R rounds of `insmod` of each of $MODULES, then `rmmod` of each,
# every operation timed in the guest (tests/linux/lk-time.c, CLOCK_MONOTONIC),
# under btvm (the debug vmlinux) and QEMU TCG (the bzImage of the same build),
# B boots each, interleaved; it prints the mean of every operation per
# machine and their ratio, and the guest's idle time (/proc/stat) a round.
#
#   tests/bench/linux-module-ops.sh [--build DIR] [--boots B] [--rounds R]
#                                   [--cpu C | --no-pin] [--btvm-arg ARG]...
#                                   [--keep DIR]
#   defaults: build, 2 boots, 10 rounds, pinned to CPU 1;
#   MODULES (default "md4 crc_itu_t dummy sha3_generic", as the benchmark)
#
# docs/linux-bench.md ("Where the module phase's time goes") has its figures.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=build boots=2 rounds=10 cpu=1 do_pin=1 btvm_args=() keep=''
MODULES=${MODULES:-"md4 crc_itu_t dummy sha3_generic"}
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2 && shift ;;
	--boots) boots=$2 && shift ;;
	--rounds) rounds=$2 && shift ;;
	--cpu) cpu=$2 && shift ;;
	--no-pin) do_pin=0 ;;
	--btvm-arg) btvm_args+=("$2") && shift ;;
	--keep) keep=$2 && shift ;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "linux-module-ops: unknown option '$1' (--help lists them)" >&2
		exit 2
		;;
	esac
	shift
done
for v in "$boots" "$rounds"; do
	case $v in '' | *[!0-9]* | 0)
		echo "linux-module-ops: '$v' is not a positive number" >&2
		exit 2
		;;
	esac
done
. tests/linux/lib.sh
LK_BTVM=$build/bin/btvm
[ -x "$LK_BTVM" ] || { echo "linux-module-ops: $LK_BTVM missing: make -j2" >&2; exit 1; }
lk_fetch || exit 1
lk_workdir linux-module-ops "$keep" || exit 1
LK_PIN=
[ "$do_pin" = 1 ] && LK_PIN="taskset -c $cpu"

lk_cc_static "$work/lk-time" tests/linux/lk-time.c || exit 1
cat >"$work/init" <<EOF
#!/bin/sh
. /lib/lk.sh
lk_setup
lk_mark start
i=0
while [ \$i -lt $rounds ]; do
	lk_mark idle \$(head -n 1 /proc/stat | cut -d ' ' -f 6)
	for m in $MODULES; do
		while read -r ko; do
			n=\${ko##*/}
			lk-time run ins_\${n%.ko} insmod \$ko || lk_end 1
		done </lib/modules/lk/\$m.order
	done
	for m in $MODULES; do
		sed '1!G;h;\$!d' /lib/modules/lk/\$m.order | while read -r ko; do
			n=\${ko##*/}
			lk-time run rm_\${n%.ko} rmmod \${n%.ko} || lk_end 1
		done
	done
	i=\$((i + 1))
done
lk_mark idle \$(head -n 1 /proc/stat | cut -d ' ' -f 6)
lk_end 0
EOF
lk_initramfs_new "$work/root" "$work/init" || exit 1
lk_initramfs_add "$work/root" "$work/lk-time" || exit 1
# shellcheck disable=SC2086 # a list of names
lk_initramfs_add_modules "$work/root" $MODULES || exit 1
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1

echo "linux-module-ops: $LK_RELEASE, $rounds rounds of insmod then rmmod of $MODULES, $boots boots each"
echo "  ${LK_PIN:-not pinned}; btvm extra arguments: ${btvm_args[*]:-(none)}"
echo "  host load average at the start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
for b in $(seq "$boots"); do
	for kind in qemu btvm; do
		if [ "$kind" = btvm ]; then
			lk_run_vm btvm "$work/$kind.$b" "$work/initrd.cpio" "$LK_CMDLINE" 512M 600 "${btvm_args[@]}"
		else
			lk_run_vm qemu "$work/$kind.$b" "$work/initrd.cpio" "$LK_CMDLINE" 512M 600
		fi
		if [ "$LK_ENDED" != 1 ] || [ "$(lk_marks "$work/$kind.$b/console.txt" end)" != 0 ]; then
			echo "linux-module-ops: $kind boot $b failed (status $LK_STATUS): $work/$kind.$b" >&2
			exit 1
		fi
	done
done
echo "  host load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
# "@@LK phase NAME NS STATUS" per operation, "@@LK idle JIFFIES" per round
for kind in qemu btvm; do
	cat "$work/$kind".*/console.txt | awk -v k="$kind" '
		/@@LK phase / { sub(/.*@@LK phase /, ""); if (!($1 in c)) printf "%s order %s %d\n", k, $1, no++; s[$1] += $2 / 1e6; c[$1]++ }
		/@@LK idle / { sub(/.*@@LK idle /, ""); if (prev != "" && $1 >= prev) { idle += $1 - prev; ni++ } prev = $1 }
		/@@LK end / { prev = "" }
		END { for (o in s) printf "%s %s %.2f\n", k, o, s[o] / c[o]; printf "%s idle %.1f\n", k, ni ? idle * 4 / ni : 0 }'
done | awk '
	$2 == "order" { if ($1 == "qemu") op[$4] = $3; next }
	{ v[$1 " " $2] = $3 }
	END {
		printf "\n%-22s %10s %10s %12s\n", "operation (mean, ms)", "qemu", "btvm", "btvm/QEMU"
		for (i = 0; i in op; i++) {
			o = op[i]
			q = v["qemu " o]; b = v["btvm " o]
			printf "%-22s %10.1f %10.1f %12.2f\n", o, q, b, q ? b / q : 0
			tq += q; tb += b
		}
		printf "%-22s %10.1f %10.1f %12.2f\n", "round", tq, tb, tq ? tb / tq : 0
		printf "%-22s %10.1f %10.1f\n", "guest idle a round", v["qemu idle"], v["btvm idle"]
	}'
echo "  (guest idle: /proc/stat idle jiffies a round x 4 ms, CONFIG_HZ=250)"
