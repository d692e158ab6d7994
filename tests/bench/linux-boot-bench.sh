#!/usr/bin/env bash
# Debian 12's own kernel under btvm (benchmark, not a test): boots the
# unmodified linux-image-6.1.0-*-cloud-amd64 vmlinux with the test guest's
# initrd and rdinit=/tests/01-hello, and measures the wall time until that
# first user program (run natively in a stub) prints its line; cold (no
# database) and warm (a `pretrans build` database of the same vmlinux), N
# runs each, medians; then one warm boot with --verify-db that re-translates
# every database block it uses and compares the bytes.
#
#   tests/bench/linux-boot-bench.sh [BUILD_DIR] [N] [ABI]   (ABI default 6.1.0-50)
set -u
build=${1:-build}
n=${2:-3}
abi=${3:-6.1.0-50}
cd "$(dirname "$0")/../.." || exit 1
vm=$(tests/tools/fetch-debian-kernel.sh "$abi") || exit 1
btvm=$build/bin/btvm
initrd=$build/guests/initrd.cpio
for f in "$btvm" "$build/bin/pretrans" "$initrd"; do
	[ -e "$f" ] || { echo "linux-boot-bench: $f missing: make BUILD=$build" >&2; exit 1; }
done
work=$(mktemp -d /tmp/linux-boot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmdline="console=ttyS0 rdinit=/tests/01-hello tsc=reliable mitigations=off panic=0"
s=$(date +%s%N)
"$build/bin/pretrans" build "$vm" -o "$work/v.tcdb" >"$work/pretrans.log" 2>&1 || {
	cat "$work/pretrans.log"
	exit 1
}
build_ms=$((($(date +%s%N) - s) / 1000000))

boot() { # MODE -> ms to the user program's line, or FAIL
	local mode=$1 args=()
	[ "$mode" = warm ] && args=(--tcdb "$work/v.tcdb")
	local start
	start=$(date +%s%N)
	"$btvm" run --kernel "$vm" --initrd "$initrd" "${args[@]}" --mem 512M \
		--cmdline "$cmdline" --timeout 60 </dev/null 2>/dev/null |
		while IFS= read -r line; do
			case "$line" in
			*"hello from user space"*)
				echo $((($(date +%s%N) - start) / 1000000))
				pkill -f -- "--cmdline $cmdline" 2>/dev/null
				exit 0
				;;
			esac
		done
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "FAIL")}'; }

for i in $(seq "$n"); do
	boot cold >>"$work/cold"
	boot warm >>"$work/warm"
done
cold=$(median <"$work/cold")
warm=$(median <"$work/warm")

timeout 90 "$btvm" run --kernel "$vm" --initrd "$initrd" --tcdb "$work/v.tcdb" --verify-db \
	--mem 512M --cmdline "$cmdline" --timeout 4 --stats=json </dev/null \
	>"$work/verify.out" 2>"$work/verify.err"
num() { grep -o "\"$1\":[0-9]*" "$work/verify.err" | head -n 1 | cut -d: -f2; }

echo "Debian $abi vmlinux under btvm: wall time to its first user program (rdinit=/tests/01-hello), median of $n"
echo "  pretrans build of the vmlinux: $build_ms ms, database $(du -m "$work/v.tcdb" | cut -f1) MB"
echo "  btvm cold: $cold ms    btvm warm: $warm ms"
awk -v c="$cold" -v w="$warm" 'BEGIN { if (c > 0) printf "  warm/cold: %.2f\n", w / c }'
echo "  warm boot with --verify-db: $(num from_db) blocks from the database, all re-translated and compared:" \
	"$(grep -c 'differs from a run-time' "$work/verify.err") differ; $(num db_stale) stale (the kernel patched them:" \
	"alternatives, static calls, ftrace), $(num translated) translated at run time"
grep -q "hello from user space" "$work/verify.out" && echo "  the user program ran: yes" ||
	echo "  the user program ran: NO"
