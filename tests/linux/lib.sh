# shellcheck shell=bash disable=SC2034 # LK_* results are read by the caller
# Real Linux guests for benchmarks and tests (sourced, not run): Debian 12's
# cloud kernel, a busybox initramfs built here, booted under btvm (the debug
# vmlinux) or QEMU TCG (the bzImage of the same build), with the console
# captured and every VM stopped by its PID.
#
# Inputs (fetched once into ${BTKERN_CACHE:-~/.cache/btkern}, then offline):
#   lk_fetch                      sets LK_VMLINUX (btvm), LK_BZIMAGE (QEMU),
#                                 LK_MODDIR (the build's lib/modules/<release>),
#                                 LK_BUSYBOX (static busybox), LK_RELEASE;
#                                 fails if the vmlinux and the bzImage are not
#                                 the same build (their "Linux version" banners)
#   lk_banner FILE                the "Linux version ..." banner of a vmlinux
#                                 or a bzImage
#   lk_module_deps NAME           NAME and its dependencies, one module path
#                                 (relative to LK_MODDIR) a line, load order
#   lk_cc_static OUT SRC [FLAGS]  gcc -static -O2 (a guest program)
#
# The initramfs (a directory, then a newc cpio):
#   lk_initramfs_new DIR INIT     busybox and a link per applet, /dev/console,
#                                 /lib/lk.sh (guest-lib.sh: lk_setup, lk_mark,
#                                 lk_end, lk_insmod, ...) and INIT as /init
#   lk_initramfs_add DIR FILE [DEST]   a static program (default /bin/NAME);
#                                 a dynamically linked one is refused
#   lk_initramfs_add_modules DIR NAME...   NAME.ko and its dependencies, and
#                                 /lib/modules/lk/NAME.order for lk_insmod
#   lk_initramfs_pack DIR OUT     the cpio (uncompressed: neither VM pays for
#                                 decompression)
#
# Booting (one VM, in the foreground, stopped by its PID):
#   lk_run_vm KIND OUTDIR INITRD CMDLINE MEM DEADLINE [EXTRA-ARGS...]
#       KIND is btvm (LK_BTVM, default build/bin/btvm, boots LK_VMLINUX) or
#       qemu (LK_QEMU, default qemu-system-x86_64 -accel tcg, boots
#       LK_BZIMAGE with the isa-debug-exit device at 0xf4 as btvm has it).
#       EXTRA-ARGS go to the VMM (e.g. --user=translated, --stats).  The
#       guest ends by printing the end marker (lk_end in guest-lib.sh: a line
#       "@@LK end CODE") and powering off; when the marker is seen the VM
#       gets LK_GRACE seconds (default 3) to end by itself, then SIGTERM,
#       then SIGKILL, by PID.  Without the marker it is stopped the same way
#       at DEADLINE seconds.  LK_PIN (e.g. "taskset -c 1") prefixes the VMM.
#     Leaves in OUTDIR: console.txt (the console, \r stripped),
#     console.stamped ("<host seconds>\t<line>" per line, as the host
#     received it), stderr; and sets:
#       LK_STATUS    the VMM's exit status (130/143 when we stopped it)
#       LK_ENDED     1 when the end marker was seen, else 0
#       LK_END_CODE  the marker's CODE (what the guest reported), or ""
#       LK_TIMEDOUT  1 when DEADLINE passed without the marker
#       LK_WALL_MS   host wall time from the start to the end marker (or to
#                    the VMM's exit)
#       LK_START_MS  the host's clock (ms since the epoch) when the VMM started
#       LK_STOPPED   1 when we stopped the VMM (SIGTERM/SIGKILL), else 0
#   LK_CMDLINE                    a command line both machines boot well with
#                                 (serial console, panic=-1, quiet,
#                                 tsc=reliable mitigations=off, as
#                                 linux-boot-bench.sh); a KEY=VALUE word the
#                                 kernel does not know reaches /init as an
#                                 environment variable (how to tell one
#                                 initramfs which test to run)
#   lk_marks FILE KEY             the fields after "@@LK KEY " on each marker
#                                 line of a console file
#   lk_stamp_ms OUTDIR KEY        the host's clock (ms since the epoch) when the
#                                 first "@@LK KEY" line arrived, or nothing
#
# Why a marker and not only the VM's exit status: the guest's `poweroff -f`
# ends both machines with status 0 (ACPI S5; btvm has had the tables and
# the PM1 registers since 2026-12-06, it used to halt: status 4), but the
# status cannot carry the guest's own result, and a guest user program
# cannot reach an exit port portably.  The marker line is the same on both
# machines, and it is stamped when it arrives (wall time to /init).

LK_ABI=${LK_ABI:-6.1.0-50}
LK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LK_BTVM=${LK_BTVM:-$LK_ROOT/build/bin/btvm}
LK_QEMU=${LK_QEMU:-qemu-system-x86_64}
LK_GRACE=${LK_GRACE:-3}
LK_PIN=${LK_PIN:-}
LK_CMDLINE=${LK_CMDLINE:-"console=ttyS0 panic=-1 quiet tsc=reliable mitigations=off"}

lk_die() {
	echo "lk: $*" >&2
	return 1
}

lk_workdir() { # PROG [KEEP]: `work` = KEEP (created, kept) or a new /tmp/PROG.* removed at exit
	if [ -n "${2:-}" ]; then
		work=$2
		mkdir -p "$work" || return 1
	else
		work=$(mktemp -d "/tmp/$1.XXXXXX") || return 1
		trap 'rm -rf "$work"' EXIT
	fi
}

lk_banner() { # FILE: "Linux version ..." of a vmlinux or a bzImage
	local f=$1
	if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
		strings -n 20 "$f" | grep -m 1 '^Linux version ' | sed -E 's/ +#/ #/'
	else
		# bzImage: the setup header's kernel_version (offset 0x20e) points
		# at a NUL-terminated string 0x200 bytes further
		local off
		off=$(od -An -tu2 -j $((0x20e)) -N 2 "$f" | tr -d ' ')
		[ -n "$off" ] || return 1
		echo "Linux version $(dd if="$f" bs=1 skip=$((off + 0x200)) count=256 status=none |
			tr '\0' '\n' | head -n 1)"
	fi
}

lk_fetch() {
	local img
	LK_VMLINUX=$("$LK_ROOT/tests/tools/fetch-debian-kernel.sh" "$LK_ABI") || return 1
	img=$("$LK_ROOT/tests/tools/fetch-debian-image.sh" "$LK_ABI") || return 1
	LK_BUSYBOX=$("$LK_ROOT/tests/tools/fetch-busybox-static.sh") || return 1
	LK_BZIMAGE=$img/vmlinuz
	LK_MODDIR=$img/modules
	LK_RELEASE=$LK_ABI-cloud-amd64
	# the vmlinux's banner has the build's "#1" stripped by the debug
	# package's string table layout; compare what follows the compiler
	local a b
	a=$(lk_banner "$LK_VMLINUX" | sed -E 's/.*(SMP.*)/\1/; s/^Linux version ([^ ]+).*/\1/')
	b=$(lk_banner "$LK_BZIMAGE" | sed -E 's/.*(SMP.*)/\1/; s/^Linux version ([^ ]+).*/\1/')
	if [ -z "$a" ] || [ "$a" != "$b" ]; then
		lk_die "$LK_VMLINUX ($a) and $LK_BZIMAGE ($b) are not the same build: remove both from the cache and fetch again"
		return 1
	fi
}

lk_cc_static() { # OUT SRC [FLAGS...]
	local out=$1 src=$2
	shift 2
	gcc -static -O2 -Wall -o "$out" "$src" "$@" || lk_die "$src: gcc -static failed (package libc6-dev)"
}

lk_module_path() { # NAME: its .ko under LK_MODDIR, relative ('-' and '_' are one)
	local n=${1//-/_} f
	f=$(cd "$LK_MODDIR" && find kernel -name '*.ko' | awk -v n="$n" \
		'{ b = $0; sub(/.*\//, "", b); sub(/\.ko$/, "", b); gsub(/-/, "_", b); if (b == n) { print; exit } }')
	[ -n "$f" ] || { lk_die "module $1 is not in $LK_MODDIR (built in, or not built by this config?)"; return 1; }
	echo "$f"
}

lk_module_deps() { # NAME: dependencies first, NAME last, each once
	local seen=" " deps=()
	_lk_dep() {
		local p d
		p=$(lk_module_path "$1") || return 1
		case $seen in *" $p "*) return 0 ;; esac
		for d in $(modinfo -F depends "$LK_MODDIR/$p" | tr ',' ' '); do
			_lk_dep "$d" || return 1
		done
		seen="$seen$p "
		deps+=("$p")
	}
	_lk_dep "$1" || return 1
	printf '%s\n' "${deps[@]}"
}

lk_initramfs_new() { # DIR INIT
	local dir=$1 init=$2 a
	[ -n "${LK_BUSYBOX:-}" ] || { lk_die "lk_initramfs_new: call lk_fetch first"; return 1; }
	[ -f "$init" ] || { lk_die "lk_initramfs_new: $init: no such file"; return 1; }
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lib,root} || return 1
	cp "$LK_BUSYBOX" "$dir/bin/busybox"
	for a in $("$LK_BUSYBOX" --list-full); do
		case $a in linuxrc | bin/busybox) continue ;; esac
		ln -sf /bin/busybox "$dir/$a"
	done
	# the kernel opens /dev/console for /init before anything is mounted
	mknod -m 600 "$dir/dev/console" c 5 1 ||
		{ lk_die "lk_initramfs_new: mknod $dir/dev/console failed (run as root)"; return 1; }
	mknod -m 666 "$dir/dev/null" c 1 3
	cp "$LK_ROOT/tests/linux/guest-lib.sh" "$dir/lib/lk.sh"
	install -m 755 "$init" "$dir/init"
}

lk_initramfs_add() { # DIR FILE [DEST]
	local dir=$1 f=$2 dest=${3:-/bin/$(basename "$2")}
	if ! readelf -h "$f" >/dev/null 2>&1; then
		lk_die "lk_initramfs_add: $f is not an ELF program"
		return 1
	fi
	if readelf -l "$f" | grep -q INTERP; then
		lk_die "lk_initramfs_add: $f is dynamically linked (the initramfs has no libc): build it with lk_cc_static"
		return 1
	fi
	mkdir -p "$dir/$(dirname "$dest")"
	install -m 755 "$f" "$dir/$dest"
}

lk_initramfs_add_modules() { # DIR NAME...
	local dir=$1 n p
	shift
	mkdir -p "$dir/lib/modules/lk"
	for n in "$@"; do
		: >"$dir/lib/modules/lk/$n.order"
		for p in $(lk_module_deps "$n"); do
			mkdir -p "$dir/lib/modules/$LK_RELEASE/$(dirname "$p")"
			cp "$LK_MODDIR/$p" "$dir/lib/modules/$LK_RELEASE/$p"
			echo "/lib/modules/$LK_RELEASE/$p" >>"$dir/lib/modules/lk/$n.order"
		done || return 1
	done
}

lk_initramfs_pack() { # DIR OUT
	local dir=$1 out=$2
	(cd "$dir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp" ||
		{ lk_die "lk_initramfs_pack: cpio failed for $dir"; return 1; }
	mv "$out.tmp" "$out"
}

lk_marks() { # FILE KEY
	grep -ao "@@LK $2 .*" "$1" | sed "s/^@@LK $2 //"
}

lk_stamp_ms() { # OUTDIR KEY
	# the serial console ends lines with \r\n
	grep -a -m 1 -E "@@LK $2([ "$'\r'"]|\$)" "$1/console.stamped" | awk -F '\t' '{ printf "%.0f\n", $1 * 1000 }'
}

_lk_now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

lk_run_vm() { # KIND OUTDIR INITRD CMDLINE MEM DEADLINE [EXTRA...]
	local kind=$1 out=$2 initrd=$3 cmdline=$4 mem=$5 deadline=$6
	shift 6
	local cmd=() pin=()
	read -r -a pin <<<"$LK_PIN"
	case $kind in
	btvm)
		[ -x "$LK_BTVM" ] || { lk_die "$LK_BTVM missing: make -j2"; return 1; }
		cmd=("$LK_BTVM" run --kernel "$LK_VMLINUX" --initrd "$initrd" --mem "$mem"
			--cmdline "$cmdline" --timeout "$deadline" "$@")
		;;
	qemu)
		command -v "$LK_QEMU" >/dev/null ||
			{ lk_die "$LK_QEMU not found: run tests/tools/deps.sh (package qemu-system-x86)"; return 1; }
		# shellcheck disable=SC2054 # commas belong to QEMU option values
		cmd=("$LK_QEMU" -accel tcg -machine pc -cpu max -m "$mem" -nodefaults -display none
			-no-reboot -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04
			-kernel "$LK_BZIMAGE" -initrd "$initrd" -append "$cmdline" "$@")
		;;
	*)
		lk_die "lk_run_vm: unknown kind '$kind' (btvm or qemu)"
		return 1
		;;
	esac
	mkdir -p "$out"
	rm -f "$out/console.fifo" "$out/console.stamped" "$out/console.txt"
	mkfifo "$out/console.fifo" || return 1
	: >"$out/console.stamped" # polled below before perl may have opened it
	# stamp each console line with the host's clock as it arrives
	perl -MTime::HiRes=time -e '$| = 1; while (<STDIN>) { printf "%.6f\t%s", time, $_ }' \
		<"$out/console.fifo" >"$out/console.stamped" &
	local spid=$!
	local start
	start=$(_lk_now_ms)
	LK_START_MS=$start
	"${pin[@]}" "${cmd[@]}" </dev/null >"$out/console.fifo" 2>"$out/stderr" &
	local vpid=$!
	LK_ENDED=0 LK_TIMEDOUT=0 LK_END_CODE=
	local end_ms='' now
	while kill -0 "$vpid" 2>/dev/null; do
		if grep -aq '@@LK end ' "$out/console.stamped"; then
			LK_ENDED=1
			break
		fi
		now=$(_lk_now_ms)
		if [ $((now - start)) -gt $((deadline * 1000 + 2000)) ]; then
			LK_TIMEDOUT=1
			break
		fi
		sleep 0.05
	done
	if [ "$LK_ENDED" = 1 ]; then # let it power off by itself
		local until=$(($(_lk_now_ms) + LK_GRACE * 1000))
		while kill -0 "$vpid" 2>/dev/null && [ "$(_lk_now_ms)" -lt "$until" ]; do
			sleep 0.05
		done
	fi
	LK_STOPPED=0
	if kill -0 "$vpid" 2>/dev/null; then
		LK_STOPPED=1
		kill -TERM "$vpid" 2>/dev/null
		local until=$(($(_lk_now_ms) + 5000))
		while kill -0 "$vpid" 2>/dev/null && [ "$(_lk_now_ms)" -lt "$until" ]; do
			sleep 0.05
		done
		kill -KILL "$vpid" 2>/dev/null
	fi
	wait "$vpid"
	LK_STATUS=$?
	wait "$spid"
	rm -f "$out/console.fifo"
	cut -f 2- "$out/console.stamped" | tr -d '\r' >"$out/console.txt"
	if [ "$LK_ENDED" = 0 ] && grep -aq '@@LK end ' "$out/console.txt"; then
		LK_ENDED=1 # printed just before the VMM exited
	fi
	if [ "$LK_ENDED" = 1 ]; then
		LK_END_CODE=$(lk_marks "$out/console.txt" end | head -n 1 | awk '{print $1}')
		end_ms=$(lk_stamp_ms "$out" end)
	fi
	[ -n "$end_ms" ] || end_ms=$(_lk_now_ms)
	LK_WALL_MS=$((end_ms - start))
	return 0
}
