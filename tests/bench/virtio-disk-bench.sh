#!/usr/bin/env bash
# A virtio disk under Debian 12's cloud kernel, btvm against QEMU TCG (an
# explicit step, not in `make check`: lk_fetch downloads the kernel once).
#
# Builds a busybox initramfs that loads virtio_pci and virtio_blk (modules
# in Debian's cloud kernel) and then, on /dev/vda:
#   - checks the size the driver sees against the image's;
#   - reads the first MIB MiB (a pattern the host wrote: the hash must match);
#   - writes 8 MiB at 64 MiB (dd conv=fsync: a FLUSH reaches the host),
#     drops the page cache and reads it back (md5);
#   - times sequential reads of MIB MiB, O_DIRECT and through a cold page
#     cache, and 8 MiB of O_DIRECT 4 KiB reads (the cost of one request)
#     (tests/linux/lk-diskread.c, MB/s from the guest's clock).
# Then btvm boots once more with IMG,ro: the driver must see a read-only
# disk, a write must fail, and the image must not change.
# Each VM gets its own copy of the image; afterwards the host checks that
# the 8 MiB written are in the image file.  btvm: --virtio-disk IMG (a
# transitional virtio-pci device); QEMU: -drive file=IMG,if=virtio,format=raw
# (its transitional device).  Linux's virtio_pci drives both through the
# modern (1.x) interface; the VM kind "legacy" is btvm again with
# virtio_pci loaded with force_legacy=1 (the legacy interface, I/O BAR 0).
# Each run checks which interface the driver took (VIRTIO_F_VERSION_1 in
# /sys/bus/virtio/devices/virtio0/features).
#
#   tests/bench/virtio-disk-bench.sh [RUNS [MIB]] [-- BTVM_ARG...]
#     RUNS (default 3) boots of each VM; the figures are medians, failed
#     runs counted.  Not pinned (LK_PIN="taskset -c 1" pins both).
#     VIRTIO_BENCH_VMS (default "qemu btvm legacy") picks the VMs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/linux/lib.sh
. "$root/tests/linux/lib.sh"
runs=3 mib=64
[ $# -gt 0 ] && [ "$1" != -- ] && { runs=$1; shift; }
[ $# -gt 0 ] && [ "$1" != -- ] && { mib=$1; shift; }
[ "${1:-}" = -- ] && shift
lk_fetch || exit 1
work=$(mktemp -d /tmp/virtio-bench.XXXXXX)
[ -n "${VIRTIO_BENCH_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

img_mib=$((mib > 72 ? mib + 8 : 80))
head -c $((mib << 20)) /dev/urandom >"$work/pattern" || exit 1
yes btkern-virtio-disk | head -c $((8 << 20)) >"$work/wpat"
want_fnv=$(python3 - "$work/pattern" <<'PY'
import struct, sys
h = 0xcbf29ce484222325
data = open(sys.argv[1], 'rb').read()
for (w,) in struct.iter_unpack('<Q', data):
    h = ((h ^ w) * 0x100000001b3) & 0xffffffffffffffff
print('%016x' % h)
PY
)
want_wmd5=$(md5sum <"$work/wpat" | cut -d' ' -f1)

cat >"$work/init" <<IEOF
#!/bin/sh
. /lib/lk.sh
lk_setup
# both lists hold virtio and virtio_ring: load each module once
for m in \$(cat /lib/modules/lk/virtio_pci.order /lib/modules/lk/virtio_blk.order | awk '!seen[\$0]++'); do
	arg=
	case "\$m" in */virtio_pci.ko*) [ "\${vpmode:-}" = legacy ] && arg=force_legacy=1 ;; esac
	insmod "\$m" \$arg || { lk_mark error insmod "\$m"; lk_end 1; }
done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
[ -b /dev/vda ] || { lk_mark error no /dev/vda; lk_end 2; }
lk_mark size \$(cat /sys/block/vda/size)
# the features string has bit N at character N + 1: VIRTIO_F_VERSION_1 is 32
lk_mark version1 \$(cut -c33 /sys/bus/virtio/devices/virtio0/features)
if [ "\${vdmode:-}" = ro ]; then # a read-only disk: the driver knows, a write fails
	lk_mark ro \$(cat /sys/block/vda/ro)
	if dd if=/wpat of=/dev/vda bs=1M count=1 conv=fsync 2>/dev/null; then lk_mark rowrite ok; else lk_mark rowrite refused; fi
	lk_end 0
fi
lk_mark check \$(lk-diskread /dev/vda $mib direct | cut -d' ' -f3)
dd if=/wpat of=/dev/vda bs=1M seek=64 conv=fsync 2>/dev/null || lk_mark error write
sync
echo 3 >/proc/sys/vm/drop_caches
lk_mark wmd5 \$(dd if=/dev/vda bs=1M skip=64 count=8 2>/dev/null | md5sum | cut -d' ' -f1)
lk_mark direct \$(lk-diskread /dev/vda $mib direct)
lk_mark direct4k \$(lk-diskread /dev/vda 8 direct 4)
lk_mark irq \$(grep virtio /proc/interrupts)
echo 3 >/proc/sys/vm/drop_caches
lk_mark cached \$(lk-diskread /dev/vda $mib)
lk_end 0
IEOF
lk_initramfs_new "$work/root" "$work/init" || exit 1
lk_cc_static "$work/lk-diskread" "$root/tests/linux/lk-diskread.c" || exit 1
lk_initramfs_add "$work/root" "$work/lk-diskread" || exit 1
cp "$work/wpat" "$work/root/wpat"
lk_initramfs_add_modules "$work/root" virtio_pci virtio_blk || exit 1
lk_initramfs_pack "$work/root" "$work/initrd.cpio" || exit 1

# QEMU TCG on a busy host fails the IO-APIC timer check now and then
# ("IO-APIC + timer doesn't work!"); btvm has no IO-APIC: the same
# command line for both
cmdline="$LK_CMDLINE no_timer_check"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fails=0
vms=${VIRTIO_BENCH_VMS:-qemu btvm legacy}
for kind in $vms; do
	: >"$work/$kind.direct"
	: >"$work/$kind.lat"
	: >"$work/$kind.cached"
done
# the two VMs alternate, so a change in the host's load hits both alike
for r in $(seq 1 "$runs"); do
	for kind in $vms; do
		img=$work/$kind.img
		cp "$work/pattern" "$img" && truncate -s $((img_mib << 20)) "$img"
		vm=btvm kcmd=$cmdline want_v1=1
		case "$kind" in
		btvm) extra=(--virtio-disk "$img" "$@") ;;
		legacy) extra=(--virtio-disk "$img" "$@") kcmd="$cmdline vpmode=legacy" want_v1=0 ;;
		*) vm=qemu extra=(-drive "file=$img,if=virtio,format=raw") ;;
		esac
		lk_run_vm "$vm" "$work/$kind.$r" "$work/initrd.cpio" "$kcmd" 512M 300 "${extra[@]}"
		c=$work/$kind.$r/console.txt
		bad=
		[ "$LK_ENDED" = 1 ] && [ "$LK_END_CODE" = 0 ] || bad="no end marker (status $LK_STATUS)"
		[ "$(lk_marks "$c" version1)" = "$want_v1" ] || bad="$bad; VERSION_1 '$(lk_marks "$c" version1)', want $want_v1"
		[ "$(lk_marks "$c" size)" = $((img_mib * 2048)) ] || bad="$bad; size $(lk_marks "$c" size)"
		[ "$(lk_marks "$c" check)" = "$want_fnv" ] || bad="$bad; read hash differs"
		[ "$(lk_marks "$c" wmd5)" = "$want_wmd5" ] || bad="$bad; write read back differs"
		[ "$(dd if="$img" bs=1M skip=64 count=8 2>/dev/null | md5sum | cut -d' ' -f1)" = "$want_wmd5" ] ||
			bad="$bad; the write did not reach the image file"
		d=$(lk_marks "$c" direct | awk '{print $1}')
		k=$(lk_marks "$c" cached | awk '{print $1}')
		if [ -n "$bad" ]; then
			echo "virtio-disk: $kind run $r: FAIL: ${bad#; }"
			tail -n 5 "$c" "$work/$kind.$r/stderr"
			fails=$((fails + 1))
			continue
		fi
		echo "virtio-disk: $kind run $r: O_DIRECT $d MB/s, cold page cache $k MB/s (boot to end $LK_WALL_MS ms)"
		lat=$(lk_marks "$c" direct4k | awk '{ printf "%.0f", $2 / 2048 / 1000 }')
		echo "virtio-disk: $kind run $r: O_DIRECT 4 KiB reads: $(lk_marks "$c" direct4k | awk '{ print $1 }') MB/s, $lat us a read"
		echo "virtio-disk: $kind run $r: interrupts: $(lk_marks "$c" irq)"
		echo "$d" >>"$work/$kind.direct"
		echo "$k" >>"$work/$kind.cached"
		echo "$lat" >>"$work/$kind.lat"
	done
done
# a read-only disk (btvm only): /sys/block/vda/ro is 1, a write is refused,
# the image is unchanged
cp "$work/pattern" "$work/ro.img" && truncate -s $((img_mib << 20)) "$work/ro.img"
before=$(md5sum <"$work/ro.img")
lk_run_vm btvm "$work/ro" "$work/initrd.cpio" "$cmdline vdmode=ro" 512M 300 --virtio-disk "$work/ro.img,ro" "$@"
if [ "$(lk_marks "$work/ro/console.txt" ro)" = 1 ] && [ "$(lk_marks "$work/ro/console.txt" rowrite)" = refused ] &&
	[ "$(md5sum <"$work/ro.img")" = "$before" ] && [ "$LK_END_CODE" = 0 ]; then
	echo "virtio-disk: btvm read-only disk: ro=1, the write refused, the image unchanged"
else
	echo "virtio-disk: btvm read-only disk: FAIL (ro '$(lk_marks "$work/ro/console.txt" ro)', write '$(lk_marks "$work/ro/console.txt" rowrite)')"
	fails=$((fails + 1))
fi
echo "virtio-disk: sequential read of $mib MiB in the guest, medians of $runs runs (failed runs: $fails):"
for kind in $vms; do
	printf '  %-6s O_DIRECT %6s MB/s   cold page cache %6s MB/s   4 KiB read %5s us   (%d ok)\n' "$kind" \
		"$(median <"$work/$kind.direct")" "$(median <"$work/$kind.cached")" "$(median <"$work/$kind.lat")" \
		"$(wc -l <"$work/$kind.direct")"
done
[ "$fails" = 0 ]
