# shellcheck shell=bash disable=SC2034 # GU_STATUS, GU_SECONDS are read by the caller
# Shared helpers for the guest integration scripts (sourced, not run).
#
#   gu_qemu_run OUTDIR APPEND [INITRD]
#       boots $GU_KERNEL under QEMU TCG with the guest contract's reference
#       command line and a fresh 1 MiB raw disk, stops after $GU_TIMEOUT
#       seconds (GU_TEE=1 also copies the console to stdout as it runs);
#       leaves OUTDIR/console.raw (serial, \r stripped),
#       OUTDIR/qemu.stderr, and sets GU_STATUS (QEMU exit status, 124 on
#       timeout) and GU_SECONDS.
#   gu_mask FILE
#       prints FILE with timing-dependent text masked: RESULT values,
#       numbers on "# " lines (a digit run not inside a word, with any hex
#       digits and dots that follow), pid and rip on kernel kill lines (they
#       move whenever a program is rebuilt; the fault address stays).
#
# The QEMU binary is $QEMU (default qemu-system-x86_64).  Later the VMM
# (btvm) replaces QEMU here: only gu_qemu_run needs to change.

GU_TIMEOUT=${GU_TIMEOUT:-60}
QEMU=${QEMU:-qemu-system-x86_64}

gu_qemu_run() {
	local outdir=$1 append=$2 initrd=${3:-}
	local disk="$outdir/disk.img"
	local args=()

	if ! command -v "$QEMU" >/dev/null 2>&1; then
		echo "qemu: $QEMU not found: run tests/tools/deps.sh (package qemu-system-x86)" >&2
		return 2
	fi
	rm -f "$disk"
	dd if=/dev/zero of="$disk" bs=1024 count=1024 status=none || return 2
	if [ -n "$initrd" ]; then
		args=(-initrd "$initrd")
	fi
	local start=$SECONDS
	# shellcheck disable=SC2054 # commas belong to QEMU option values
	local cmd=(timeout --kill-after=5 "$GU_TIMEOUT" "$QEMU" -accel tcg -machine pc -cpu max
		-m 256M -nodefaults -display none -no-reboot -serial stdio
		-device isa-debug-exit,iobase=0xf4,iosize=0x04
		-kernel "$GU_KERNEL" "${args[@]}" -append "$append"
		-drive file="$disk",format=raw,if=ide,index=0)
	if [ "${GU_TEE:-0}" = 1 ]; then
		# show the console live as well
		"${cmd[@]}" </dev/null 2>"$outdir/qemu.stderr" | tee "$outdir/console.bin"
		GU_STATUS=${PIPESTATUS[0]}
	else
		"${cmd[@]}" </dev/null >"$outdir/console.bin" 2>"$outdir/qemu.stderr"
		GU_STATUS=$?
	fi
	GU_SECONDS=$((SECONDS - start))
	tr -d '\r' <"$outdir/console.bin" >"$outdir/console.raw"
	return 0
}

gu_mask() {
	sed -E \
		-e 's/^(RESULT [^ ]+) [^ ]+ /\1 <value> /' \
		-e '/^# /s/(^|[^A-Za-z0-9_])[0-9][0-9a-fA-Fx.]*/\1N/g' \
		-e 's/^(\[kernel\] pid )[0-9]+( killed: #[A-Z]+ at rip )0x[0-9a-fA-F]+/\1N\2N/' \
		"$1"
}
