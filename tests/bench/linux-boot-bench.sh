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

boot() { # MODE -> ms to the user program's line, or FAIL; the VM is stopped by its PID
	local mode=$1 args=() out=$work/boot.out ms=FAIL start pid
	[ "$mode" = warm ] && args=(--tcdb "$work/v.tcdb")
	: >"$out"
	start=$(date +%s%N)
	"$btvm" run --kernel "$vm" --initrd "$initrd" "${args[@]}" --mem 512M \
		--cmdline "$cmdline" --timeout 60 </dev/null >"$out" 2>/dev/null &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do # polled every 10 ms: +-10 ms
		if grep -q "hello from user space" "$out"; then
			ms=$((($(date +%s%N) - start) / 1000000))
			break
		fi
		sleep 0.01
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo "$ms"
}
# Median with failed boots counted (as slower than every success), and how
# many failed: a failure is never dropped from the median.
median() {
	sed 's/^FAIL$/999999999/' | sort -n |
		awk '{a[NR]=$1} END {m=(NR ? a[int((NR+1)/2)] : 999999999); print (m == 999999999 ? "FAIL" : m)}'
}
failed() { grep -c '^FAIL$' || true; }

for _ in $(seq "$n"); do
	boot cold >>"$work/cold"
	boot warm >>"$work/warm"
done
cold=$(median <"$work/cold")
warm=$(median <"$work/warm")
cold_failed=$(failed <"$work/cold")
warm_failed=$(failed <"$work/warm")

timeout 90 "$btvm" run --kernel "$vm" --initrd "$initrd" --tcdb "$work/v.tcdb" --verify-db \
	--mem 512M --cmdline "$cmdline" --timeout 20 --stats=json </dev/null \
	>"$work/verify.out" 2>"$work/verify.err"
num() { grep -o "\"$1\":[0-9]*" "$work/verify.err" | head -n 1 | cut -d: -f2; }

echo "Debian $abi vmlinux under btvm: wall time to its first user program (rdinit=/tests/01-hello), median of $n"
echo "  pretrans build of the vmlinux: $build_ms ms, database $(du -m "$work/v.tcdb" | cut -f1) MB"
echo "  btvm cold: $cold ms ($cold_failed of $n failed)    btvm warm: $warm ms ($warm_failed of $n failed)"
echo "  (not pinned: btvm and its stubs float over both CPUs; failed boots count in the medians)"
awk -v c="$cold" -v w="$warm" 'BEGIN { if (c > 0) printf "  warm/cold: %.2f\n", w / c }'
echo "  warm boot with --verify-db: $(num from_db) blocks from the database, all re-translated and compared:" \
	"$(grep -c 'differs from a run-time' "$work/verify.err") differ; $(num db_stale) stale (the kernel patched them:" \
	"alternatives, static calls, ftrace), $(num translated) translated at run time"
grep -q "hello from user space" "$work/verify.out" && echo "  the user program ran: yes" ||
	echo "  the user program ran: NO"
