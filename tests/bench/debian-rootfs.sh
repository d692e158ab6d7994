#!/usr/bin/env bash
# A real Debian 12 system from a virtio disk, btvm against QEMU TCG (an
# explicit step, not in `make check`: it downloads Debian's kernel, about
# 300 MB once, and debootstraps a root file system, about 60 MB once).
#
# Debian's 6.1 cloud kernel boots a busybox initramfs that loads the disk
# modules (virtio_pci, virtio_blk: modules in this kernel; ext4 is built in),
# mounts /dev/vda and switch_roots into a minimal Debian 12 root file system
# (tests/tools/mk-debian-rootfs.sh: debootstrap minbase + systemd, an ext4
# raw image cached in ~/.cache/btkern).  systemd runs to multi-user.target
# with a serial getty; tests/tools/serial-session.py logs in as root over
# the serial console, runs a few commands (uname -r, systemctl
# is-system-running --wait, the root mount, /etc/motd) and types poweroff;
# the VMM must then exit 0 by itself.  QEMU TCG boots the bzImage of the
# same build with the same initramfs, command line, memory and a copy of the
# same image (-drive if=virtio) in the same run.  Each boot gets a fresh
# copy of the image.
#
#   tests/bench/debian-rootfs.sh [--build DIR] [--runs R] [--modes "M ..."]
#                                [--no-qemu] [--keep DIR] [--deadline S]
#                                [-- BTVM_ARG...]
#     --runs R     boots of each VM (default 1), interleaved; medians, failed
#                  runs counted
#     --modes      btvm --user modes, one btvm column each (default
#                  "adaptive", btvm's default)
#     --deadline S stop a VM after S seconds (default 900)
#   Not pinned (LK_PIN="taskset -c 1" pins both VMMs).
#
# Prints, per VMM: wall seconds to the login prompt, to a shell, to the end
# of the commands, to the VMM's exit, its exit status, and the commands'
# output of the first run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/linux/lib.sh
. "$root/tests/linux/lib.sh"
build=$root/build runs=1 qemu=1 keep='' deadline=900 btvm_args=() modes=adaptive
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2 && shift ;;
	--runs) runs=$2 && shift ;;
	--no-qemu) qemu=0 ;;
	--modes) modes=$2 && shift ;;
	--keep) keep=$2 && shift ;;
	--deadline) deadline=$2 && shift ;;
	--)
		shift
		btvm_args=("$@")
		break
		;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "debian-rootfs: unknown option '$1' (--help lists them)" >&2
		exit 2
		;;
	esac
	shift
done
for v in "$runs" "$deadline"; do
	case $v in '' | *[!0-9]* | 0)
		echo "debian-rootfs: '$v' is not a positive number" >&2
		exit 2
		;;
	esac
done
LK_BTVM=$build/bin/btvm
[ -x "$LK_BTVM" ] || { echo "debian-rootfs: $LK_BTVM missing: make -j2" >&2; exit 1; }
lk_fetch || exit 1
img=$("$root/tests/tools/mk-debian-rootfs.sh") || exit 1
if [ -n "$keep" ]; then
	work=$keep
	mkdir -p "$work" || exit 1
else
	work=$(mktemp -d /tmp/debian-rootfs.XXXXXX)
	trap 'rm -rf "$work"' EXIT
fi

# the disk drivers are modules of this kernel, ext4 is built in
"$root/tests/tools/mk-initramfs.sh" "$work/initrd.cpio" --abi "${LK_RELEASE%-cloud-amd64}" \
	--module virtio_pci --module virtio_blk --switch-root /dev/vda >/dev/null || exit 1

cmdline=$LK_CMDLINE
mem=1G
echo "debian-rootfs: $LK_RELEASE, $(cat "$(dirname "$img")/stamp" | head -n 1), $runs run(s) each, mem $mem"
echo "  command line: $cmdline"
echo "  host load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
[ -n "${LK_PIN:-}" ] && echo "  pinned: $LK_PIN" || echo "  not pinned"

read -r -a pin <<<"${LK_PIN:-}"
one_run() { # KIND N (KIND: qemu or btvm:MODE)
	local kind=${1%%:*} mode=${1#*:} n=$2 out=$work/$1.$2 disk
	mkdir -p "$out"
	disk=$out/root.img
	cp --sparse=always "$img" "$disk" || return 1
	local cmd
	case $kind in
	btvm)
		cmd=("$LK_BTVM" run --kernel "$LK_VMLINUX" --initrd "$work/initrd.cpio" --mem "$mem"
			--cmdline "$cmdline" --virtio-disk "$disk" --timeout "$deadline" --user "$mode"
			"${btvm_args[@]}")
		;;
	qemu)
		# shellcheck disable=SC2054 # commas belong to QEMU option values
		cmd=("$LK_QEMU" -accel tcg -machine pc -cpu max -m "$mem" -nodefaults -display none
			-no-reboot -serial stdio -kernel "$LK_BZIMAGE" -initrd "$work/initrd.cpio"
			-append "$cmdline" -drive "file=$disk,if=virtio,format=raw")
		;;
	esac
	python3 "$root/tests/tools/serial-session.py" --out "$out" --deadline "$deadline" \
		-- "${pin[@]}" "${cmd[@]}" >"$out/result.json" 2>"$out/stderr"
	rm -f "$disk"
}

kinds=()
for m in $modes; do kinds+=("btvm:$m"); done
[ "$qemu" = 1 ] && kinds+=(qemu)
for ((r = 1; r <= runs; r++)); do
	for k in "${kinds[@]}"; do
		one_run "$k" "$r"
		echo "  run $r $k: $(cat "$work/$k.$r/result.json" 2>/dev/null | head -c 300)"
	done
done

python3 - "$work" "$runs" "${kinds[@]}" <<'PY'
import json, os, statistics, sys
work, runs, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
keys = ["login_prompt_s", "shell_s", "commands_s", "exit_s"]
print()
print("| VMM | login prompt (s) | shell (s) | commands done (s) | VMM exited (s) | exit status | failed runs |")
print("|---|---|---|---|---|---|---|")
first = {}
med = {}
for k in kinds:
    rows, failed, statuses = [], 0, []
    for r in range(1, runs + 1):
        try:
            d = json.load(open(os.path.join(work, "%s.%d" % (k, r), "result.json")))
        except (OSError, ValueError):
            d = {"failed_step": "no result"}
        statuses.append(str(d.get("exit_status")))
        if d.get("failed_step") or d.get("exit_status") != 0:
            failed += 1
            rows.append(None)
        else:
            rows.append(d)
        first.setdefault(k, d)
    def m(key):
        vals = [d[key] for d in rows if d]
        # failed runs count as slower than any finished one
        vals += [float("inf")] * (len(rows) - len(vals))
        v = statistics.median(vals) if vals else float("inf")
        return v
    med[k] = {key: m(key) for key in keys}
    cells = ["%.1f" % med[k][key] if med[k][key] != float("inf") else "failed" for key in keys]
    print("| %s | %s | %s | %s | %s | %s | %d/%d |" % (k, *cells, ",".join(statuses), failed, runs))
if "qemu" in med and med["qemu"]["login_prompt_s"] not in (0, float("inf")):
    q = med["qemu"]["login_prompt_s"]
    print()
    for k in kinds:
        b = med[k]["login_prompt_s"]
        if k != "qemu" and b != float("inf"):
            print("%s/QEMU, wall time to the login prompt: %.2f" % (k, b / q))
for k in kinds:
    d = first.get(k, {})
    print("\n%s, run 1: failed step: %s" % (k, d.get("failed_step")))
    for name, text in d.get("outputs", {}).items():
        print("  %s: %s" % (name, text.replace("\n", " | ")))
PY
