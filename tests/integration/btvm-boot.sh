#!/usr/bin/env bash
# btvm boots the test guest (check step check-btvm-boot).
#
#   tests/integration/btvm-boot.sh BUILD_DIR
#
# Scenarios; each compares the guest console with an oracle (masked as the
# QEMU boot test masks it) and checks btvm's exit status:
#   cold-kernel   test=kernel, no initrd, no database: == guests/qemu-kernel.expect
#                 (kernel/kmod fails without its initrd, so the guest reports 1: status 3)
#   cold-initrd   test=kernel with the initrd: every kernel test ok (status 1) and
#                 the console equals QEMU's for the same command line, run now
#   probes        the same with --count-probes: the console unchanged, inline
#                 probes counted, more than missed, misses split by kind; with
#                 --tcdb: status 2 and one line (probes-db)
#   warm          the same from a `pretrans build` database with --verify-db: the
#                 database blocks are byte-identical to run-time translations,
#                 most blocks come from the database, the console is unchanged
#   learn         two boots with --learn: the second translates fewer blocks;
#                 one whose write-back fails (database locked): status 6
#   bzimage-warm  a synthetic bzImage around the test guest (with a build-id),
#                 its vmlinux's database: the unpacked kernel is identified, most
#                 blocks come from the database, --learn adds no decompressor block
#   bzimage-foreign  the same with another build-id: no database block, one
#                 line saying so, --learn leaves the database unchanged
#   bzimage-kaslr  the database's build-id note 64 MiB above its link address
#                 (as KASLR would move it): one line with the offset, no
#                 database block, nothing written
#   bzimage-version  a bzImage whose kernel_version is another build's:
#                 the database is refused at open (status 2, one line)
#   bad input     a database of another image, a corrupt database, a missing or
#                 non-ELF kernel, a .ko as kernel, a missing initrd: status 2 and a one-line
#                 message naming the file; a triple-faulting kernel, a kernel
#                 running into garbage: status 8 (a triple fault resets the
#                 machine); a kernel that never stops:
#                 status 124 with --timeout; a disk image another VM holds: status 2
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/qemu-lib.sh"
. "$here/btvm-lib.sh"
BT_TAG="btvm-boot"

build=${1:?usage: btvm-boot.sh BUILD_DIR}
btvm=$build/bin/btvm
pretrans=$build/bin/pretrans
GU_KERNEL=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
for f in "$btvm" "$pretrans" "$GU_KERNEL" "$initrd" "$build/tests/guests/tiny-triple.elf"; do
	if [ ! -e "$f" ]; then
		echo "btvm-boot: $f is missing: build it with make BUILD=$build" >&2
		exit 1
	fi
done

work=$(mktemp -d /tmp/btvm-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
# never the user's database key (make check sets one under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config}
same() { # NAME EXPECT_FILE_OR_CONSOLE
	platform_filter "$work/$1/console.raw" >"$work/$1/console.masked"
	local ref=$2
	if [ -f "$ref.raw" ]; then
		platform_filter "$ref.raw" >"$ref.masked"
	else
		platform_filter "$ref" >"$work/$1/expect.masked"
		ref=$work/$1/expect
	fi
	ref=$ref.masked
	if ! diff -u --label "oracle" --label "btvm ($1, masked)" "$ref" "$work/$1/console.masked"; then
		fail "$1" "the console differs from the oracle (diff above)"
	fi
}

# --- cold boots -----------------------------------------------------------
run cold-kernel 3 --kernel "$GU_KERNEL" --cmdline "console=ttyS0 test=kernel" &&
	same cold-kernel "$repo/guests/qemu-kernel.expect"

run cold-initrd 1 --kernel "$GU_KERNEL" --initrd "$initrd" \
	--cmdline "console=ttyS0 test=kernel" --stats=json
grep -q '^not ok' "$work/cold-initrd/console.raw" && fail cold-initrd "a kernel test failed"
mkdir -p "$work/qemu"
if gu_qemu_run "$work/qemu" "console=ttyS0 test=kernel" "$initrd" && [ "$GU_STATUS" = 1 ]; then
	cp "$work/qemu/console.raw" "$work/qemu/ref.raw"
	same cold-initrd "$work/qemu/ref"
else
	fail qemu "QEMU did not run the same guest to success (status ${GU_STATUS:-?})"
fi
cold_translated=$(json "$work/cold-initrd/stderr" translated)
# --stats-file: the statistics go to the file (perf stat -o), as one JSON
# object with its schema key; a file that is one of the VM's inputs is refused
# before anything is written to it
run stats-file 3 --kernel "$GU_KERNEL" --cmdline "console=ttyS0 test=kernel" --stats=json \
	--stats-file "$work/stats.json"
if ! python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d["schema"] != "btkern-btvm-stats/1" or d["exit_status"] != 3)' "$work/stats.json"; then
	fail stats-file "$work/stats.json is not btvm's statistics as JSON with schema btkern-btvm-stats/1"
elif grep -q '"schema"' "$work/stats-file/stderr"; then
	fail stats-file "the statistics went to stderr as well"
else
	echo "btvm-boot: [stats-file] ok"
fi

# --count-probes: the same guest, its console as QEMU's, every inline probe
# counted (more than missed, and the slow paths split by kind add up); refused
# with --tcdb (a database's blocks have no counters)
if run probes 1 --kernel "$GU_KERNEL" --initrd "$initrd" --cmdline "console=ttyS0 test=kernel" \
	--count-probes --stats=json; then
	same probes "$work/qemu/ref"
	if python3 - "$work/probes/stderr" <<'EOP'; then
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith('{"schema"')][0]
p = json.loads(line)["probes"]
kinds = sum(v for k, v in p.items() if k.startswith("miss_"))
rate = 100.0 * (p["counted"] - p["slow_paths"]) / p["counted"] if p["counted"] else -1
ok = p["counted"] > p["slow_paths"] > 0 and kinds == p["slow_paths"] and abs(p["inline_hit_rate"] - rate) < 0.01
# the call-out's fast path: served misses are counted in their class too
classes = [k[5:] for k in p if k.startswith("miss_")]
fast = sum(p["fast_" + c] for c in classes)
ok = ok and all(0 <= p["fast_" + c] <= p["miss_" + c] for c in classes)
# (first-level hits besides the second level's, which the string call-out's
# fast path shares; never a crossing or device memory)
st = json.loads(line)["strings"]
ok = ok and 0 <= st["fast"] <= st["callouts"] and st["fast_l2_pages"] >= 0
ok = ok and fast + st["fast_l2_pages"] >= p["fast_l2_hits"] + p["fast_smap_hits"] + p["fast_large_hits"] and p["fast_cross"] == p["fast_mmio"] == 0
print("btvm-boot: [probes] %d inline probes, %d missed (%.2f%% hit inline), %d served by the fast path; %d string call-outs, %d completed fast" % (p["counted"], p["slow_paths"], p["inline_hit_rate"], fast, st["callouts"], st["fast"]))
sys.exit(0 if ok else 1)
EOP
		:
	else
		fail probes "--count-probes: the probe counts are missing or inconsistent"
	fi
fi
# --no-fast-paths: the same guest and console with every soft-MMU and string
# call-out through its full path: nothing served fast, misses still counted
if run nofast 1 --kernel "$GU_KERNEL" --initrd "$initrd" --cmdline "console=ttyS0 test=kernel" \
	--count-probes --no-fast-paths --stats=json; then
	same nofast "$work/qemu/ref"
	if python3 - "$work/nofast/stderr" <<'EOP'; then
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith('{"schema"')][0]
d = json.loads(line)
p, st = d["probes"], d["strings"]
fast = sum(v for k, v in p.items() if k.startswith("fast_"))
ok = p["slow_paths"] > 0 and fast == 0 and st["callouts"] > 0 and st["fast"] == 0
print("btvm-boot: [nofast] %d probe misses, %d string call-outs, none served fast" % (p["slow_paths"], st["callouts"]))
sys.exit(0 if ok else 1)
EOP
		:
	else
		fail nofast "--no-fast-paths: a call-out was still served by a fast path"
	fi
fi
# --- warm boot from a database ---------------------------------------------
db=$work/kernel.tcdb
if ! "$pretrans" build "$GU_KERNEL" -o "$db" >"$work/pretrans.log" 2>&1; then
	fail warm "pretrans build failed: $(tail -n 3 "$work/pretrans.log")"
fi
if run probes-db 2 --kernel "$GU_KERNEL" --tcdb "$db" --count-probes; then
	grep -q -- "--count-probes counts in code translated at run time: drop --tcdb" \
		"$work/probes-db/stderr" || fail probes-db "no one-line reason for refusing --count-probes with --tcdb"
fi
if run warm 1 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$db" --verify-db \
	--cmdline "console=ttyS0 test=kernel" --stats=json; then
	same warm "$work/qemu/ref"
	from_db=$(json "$work/warm/stderr" from_db)
	verified=$(json "$work/warm/stderr" db_verified)
	translated=$(json "$work/warm/stderr" translated)
	echo "btvm-boot: [warm] $from_db blocks from the database ($verified re-verified identical), $translated translated; cold translated $cold_translated"
	[ "${from_db:-0}" -gt 0 ] || fail warm "no block came from the database"
	[ "${verified:-x}" = "${from_db:-y}" ] || fail warm "not every database block was re-verified"
	[ "${translated:-0}" -lt "${cold_translated:-0}" ] ||
		fail warm "a warm boot translated as much as a cold one"
	grep -q "differs from a run-time translation" "$work/warm/stderr" &&
		fail warm "a database block differs from the run-time translation of the same bytes"
	# the guest patches 4 of its 5 alternatives sites at boot (guests/kernel/alt.c,
	# the same on every x86-64 CPU): pretrans predicted them, so no database
	# block is stale and the 4 patched blocks come from the predicted versions
	stale=$(json "$work/warm/stderr" db_stale)
	predicted=$(json "$work/warm/stderr" db_predicted)
	echo "btvm-boot: [warm] $predicted predicted versions used, $stale stale"
	[ "${stale:-x}" = 0 ] || fail warm "$stale database blocks were stale (the prediction missed a patch)"
	[ "${predicted:-x}" = 4 ] || fail warm "$predicted predicted versions used, want 4 (the guest's patched sites)"
fi
# without the predicted versions the same 4 blocks are stale
cp "$db" "$work/nopred.tcdb"
sqlite3 "$work/nopred.tcdb" "DELETE FROM packs WHERE kind = 3"
if run warm-nopred 1 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$work/nopred.tcdb" \
	--cmdline "console=ttyS0 test=kernel" --stats=json; then
	stale=$(json "$work/warm-nopred/stderr" db_stale)
	[ "${stale:-x}" = 4 ] || fail warm-nopred "$stale stale blocks without the prediction, want 4"
fi

# --- learning ----------------------------------------------------------------
cp "$db" "$work/learn.tcdb"
run learn1 1 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$work/learn.tcdb" --learn \
	--cmdline "console=ttyS0 test=kernel" --stats=json
run learn2 1 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$work/learn.tcdb" --learn \
	--cmdline "console=ttyS0 test=kernel" --stats=json
l1=$(json "$work/learn1/stderr" translated)
learned=$(json "$work/learn1/stderr" learned)
l2=$(json "$work/learn2/stderr" translated)
echo "btvm-boot: [learn] first boot translated $l1 and learned $learned; second translated $l2"
[ "${learned:-0}" -gt 0 ] || fail learn "nothing was learned"
[ "${l2:-9999}" -lt "${l1:-0}" ] || fail learn "the second boot was not warmer"
# the boot profile the first --learn boot wrote holds every block version it
# ran (patched ones too): the second boot translates at most 1% of its blocks
d2=$(json "$work/learn2/stderr" from_db)
[ $((100 * ${l2:-9999})) -le "${d2:-0}" ] ||
	fail learn "after one --learn boot, $l2 of $((${l2:-0} + ${d2:-0})) blocks were translated (more than 1%)"

# --verify-db compares exits as well as code and pc map: every learned row
# whose first exit's guest target is altered (its guest bytes still match,
# and its tag is recomputed with the key, as only the key's owner can) is
# refused before use, and the guest still runs correctly.
cp "$work/learn.tcdb" "$work/tampered.tcdb"
tampered=$(python3 - "$work/tampered.tcdb" <<'PY'
import sqlite3, struct, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT guest_start, exits FROM blocks WHERE origin = 1 AND length(exits) >= 20").fetchall()
for start, ex in rows:
    ex = bytearray(ex)
    struct.pack_into("<Q", ex, 12, struct.unpack_from("<Q", ex, 12)[0] ^ 0x10)
    c.execute("UPDATE blocks SET exits = ? WHERE guest_start = ?", (bytes(ex), start))
c.commit()
print(len(rows))
PY
)
python3 "$here/tcdb-tamper.py" "$work/tampered.tcdb" resign-rows "$XDG_CONFIG_HOME/btkern/db.key" >/dev/null ||
	fail verify-exits "could not sign the altered rows again"
# the same blocks are in the boot profile, served first: without it, the
# altered rows are read
sqlite3 "$work/tampered.tcdb" "DELETE FROM packs WHERE kind = 5"
if run verify-exits 1 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$work/tampered.tcdb" \
	--verify-db --cmdline "console=ttyS0 test=kernel" --stats=json; then
	same verify-exits "$work/qemu/ref"
	refused=$(grep -c "differs from a run-time translation" "$work/verify-exits/stderr")
	echo "btvm-boot: [verify-exits] $tampered learned rows with an altered exit target, $refused refused by --verify-db"
	[ "${tampered:-0}" -gt 0 ] || fail verify-exits "no learned row to alter"
	[ "$refused" -gt 0 ] || fail verify-exits "--verify-db accepted a block whose exit differs"
fi

# A --learn whose write-back fails (another process holds the database's
# write lock past sqlite's busy timeout): its own exit status (6, not the
# guest's), "learned":0, and the stats agree with the process status.
cp "$db" "$work/locked.tcdb"
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").write("locked")
time.sleep(120)' "$work/locked.tcdb" "$work/locked.ready" &
locker=$!
for _ in $(seq 100); do [ -s "$work/locked.ready" ] && break; sleep 0.1; done
run learn-locked 6 --kernel "$GU_KERNEL" --initrd "$initrd" --tcdb "$work/locked.tcdb" --learn \
	--cmdline "console=ttyS0 test=kernel" --stats=json
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
[ "$(json "$work/learn-locked/stderr" learned)" = 0 ] ||
	fail learn-locked "a failed write-back still counts learned blocks"
[ "$(json "$work/learn-locked/stderr" exit_status)" = 6 ] ||
	fail learn-locked "--stats disagrees with the exit status"
grep -q "writing learned blocks failed" "$work/learn-locked/stderr" ||
	fail learn-locked "no message about the failed write-back"

# --- a bzImage with the database of its vmlinux (docs/runtime.md "A database
# with a bzImage") ---------------------------------------------------------------
# kernel-bid.elf (the test guest with a loaded build-id note) inside a
# synthetic bzImage whose decompressor copies it into place; its database is
# used once the unpacked kernel shows the database's build-id
bzdb=$work/bid.tcdb
"$pretrans" build "$build/guests/kernel-bid.elf" -o "$bzdb" >"$work/pretrans-bid.log" 2>&1 ||
	fail bzimage-warm "pretrans build failed: $(tail -n 3 "$work/pretrans-bid.log")"
# the setup header's kernel_version as Linux writes it for the banner of
# guests/kernel/bid/banner.c
kver="0.1-test (btkern@btkern) #1 btkern test guest"
python3 "$repo/tests/tools/mk-test-bzimage.py" "$build/guests/kernel-bid.elf" "$work/bid.bz" \
	"--kernel-version=$kver" || fail bzimage-warm "mk-test-bzimage.py failed"
# the same code with another build-id and the same kernel_version (a
# rebuild of the same version): only the build-id tells
python3 "$repo/tests/tools/mk-test-bzimage.py" "$build/guests/kernel-bid.elf" "$work/other.bz" \
	--patch-build-id "--kernel-version=$kver" ||
	fail bzimage-foreign "mk-test-bzimage.py --patch-build-id failed"
python3 "$repo/tests/tools/mk-test-bzimage.py" "$build/guests/kernel-bid.elf" "$work/moved.bz" \
	--move-build-id=0x4000000 "--kernel-version=$kver" ||
	fail bzimage-kaslr "mk-test-bzimage.py --move-build-id failed"
python3 "$repo/tests/tools/mk-test-bzimage.py" "$build/guests/kernel-bid.elf" "$work/older.bz" \
	"--kernel-version=0.0-test (btkern@btkern) #1 btkern test guest" ||
	fail bzimage-version "mk-test-bzimage.py failed"
if run bzimage-warm 1 --kernel "$work/bid.bz" --initrd "$initrd" --tcdb "$bzdb" --learn \
	--cmdline "console=ttyS0 test=kernel" --stats=json --log db:info; then
	same bzimage-warm "$work/qemu/ref"
	from_db=$(json "$work/bzimage-warm/stderr" from_db)
	translated=$(json "$work/bzimage-warm/stderr" translated)
	learned=$(json "$work/bzimage-warm/stderr" learned)
	echo "btvm-boot: [bzimage-warm] $from_db blocks from the database, $translated translated, $learned learned"
	grep -q "bid.bz unpacked is the database's (build-id [0-9a-f]* at 0xffffffff8" \
		"$work/bzimage-warm/stderr" || fail bzimage-warm "the unpacked kernel was not identified"
	[ "${from_db:-0}" -gt 0 ] || fail bzimage-warm "no block came from the database"
	[ $((10 * ${translated:-9999})) -lt "${from_db:-0}" ] ||
		fail bzimage-warm "more than a tenth as many blocks translated as from the database"
	[ "${learned:-0}" -gt 0 ] || fail bzimage-warm "nothing was learned"
fi
# learned after the identification: the next boot of the bzImage is warmer
if run bzimage-learned 1 --kernel "$work/bid.bz" --initrd "$initrd" --tcdb "$bzdb" \
	--cmdline "console=ttyS0 test=kernel" --stats=json; then
	t2=$(json "$work/bzimage-learned/stderr" translated)
	echo "btvm-boot: [bzimage-learned] $t2 translated after learning (before: $translated)"
	[ "${t2:-9999}" -lt "${translated:-0}" ] ||
		fail bzimage-learned "the boot after --learn translated as many blocks"
fi
# the same code with another build-id: nothing from the database, said in
# one line, and --learn leaves the database as it was
cp "$bzdb" "$work/foreign.tcdb"
if run bzimage-foreign 1 --kernel "$work/other.bz" --initrd "$initrd" --tcdb "$work/foreign.tcdb" \
	--learn --cmdline "console=ttyS0 test=kernel" --stats=json; then
	same bzimage-foreign "$work/qemu/ref"
	grep -q "other.bz unpacked is not the database's image (no build-id" \
		"$work/bzimage-foreign/stderr" || fail bzimage-foreign "no line saying the kernel is another"
	[ "$(json "$work/bzimage-foreign/stderr" from_db)" = 0 ] ||
		fail bzimage-foreign "blocks came from the database of another kernel"
	cmp -s "$bzdb" "$work/foreign.tcdb" || fail bzimage-foreign "--learn wrote into the database"
fi
# the database's note 64 MiB above the link address (what a kernel moved by
# KASLR shows): said in one line with the offset, nothing from the
# database, nothing written
cp "$bzdb" "$work/kaslr.tcdb"
if run bzimage-kaslr 1 --kernel "$work/moved.bz" --initrd "$initrd" --tcdb "$work/kaslr.tcdb" \
	--learn --cmdline "console=ttyS0 test=kernel" --stats=json; then
	same bzimage-kaslr "$work/qemu/ref"
	grep -q "but KASLR moved it by +0x4000000 from the link address" "$work/bzimage-kaslr/stderr" ||
		fail bzimage-kaslr "no line saying KASLR moved the kernel by 0x4000000"
	[ "$(json "$work/bzimage-kaslr/stderr" from_db)" = 0 ] ||
		fail bzimage-kaslr "blocks came from the database at the wrong addresses"
	cmp -s "$bzdb" "$work/kaslr.tcdb" || fail bzimage-kaslr "--learn wrote into the database"
fi

# --- bad input -----------------------------------------------------------------
bad() { # NAME WANT_STATUS PATTERN btvm-args...
	local name=$1 want=$2 pat=$3
	shift 3
	mkdir -p "$work/$name"
	timeout --kill-after=5 60 "$btvm" run "$@" </dev/null >"$work/$name/out" 2>"$work/$name/err"
	local st=$?
	if [ "$st" != "$want" ]; then
		fail "$name" "exit status $st, expected $want; stderr: $(head -c 400 "$work/$name/err")"
	elif ! grep -qE "$pat" "$work/$name/err"; then
		fail "$name" "no message matching /$pat/; stderr: $(head -c 400 "$work/$name/err")"
	else
		echo "btvm-boot: [$name] ok: $(grep -E "$pat" "$work/$name/err" | head -n 1)"
	fi
}
other=$build/tests/guests/tiny-spin.elf
"$pretrans" build "$build/guests/user/tests/01-hello" -o "$work/other.tcdb" >/dev/null 2>&1 ||
	fail foreign-db "pretrans could not build a database for another image"
bad foreign-db 2 "other.tcdb.*(another|other|differ)" --kernel "$GU_KERNEL" --tcdb "$work/other.tcdb"
# A kernel with a build-id and a database of an image without one (here
# the same code with a build-id note added): another image, refused.
printf '\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0ABCDEFGHIJKLMNOPQRST' >"$work/build-id.note"
objcopy --add-section .note.gnu.build-id="$work/build-id.note" "$GU_KERNEL" "$work/kernel-bid.elf" ||
	fail foreign-db-build-id "objcopy could not add a build-id note"
bad foreign-db-build-id 2 "kernel.tcdb is for image .*build-id none.*not for" \
	--kernel "$work/kernel-bid.elf" --tcdb "$db"
mkfifo "$work/fifo.tcdb"
bad fifo-db 2 "fifo.tcdb: not a regular file" --kernel "$GU_KERNEL" --tcdb "$work/fifo.tcdb"
head -c 8192 /dev/urandom >"$work/corrupt.tcdb"
bad corrupt-db 2 "corrupt.tcdb" --kernel "$GU_KERNEL" --tcdb "$work/corrupt.tcdb"
bad no-kernel 2 "kernel .*nosuch.elf" --kernel "$work/nosuch.elf"
bad not-elf 2 "initrd.cpio" --kernel "$initrd"
# a bzImage's boot sector and setup header (0xaa55 at 0x1fe, "HdrS" at
# 0x202) of protocol 0.00: no 64-bit entry (tests/unit/test_boot.c boots a
# well-formed one; tests/linux/smoke.sh Debian's)
python3 -c 'import sys; b = bytearray(4096); b[0x1fe:0x200] = b"\x55\xaa"; b[0x202:0x206] = b"HdrS"; sys.stdout.buffer.write(b)' >"$work/vmlinuz"
bad bzimage-old 2 "vmlinuz: boot protocol 0.00: a 64-bit entry needs 2.12 or later" --kernel "$work/vmlinuz"
# a well-formed 64-bit bzImage header with the database of an image that has
# no build-id: nothing to identify the unpacked kernel by, refused
python3 -c 'import sys, struct
b = bytearray(2 * 512 + 4096); b[0x1f1] = 1; b[0x1fe:0x200] = b"\x55\xaa"; b[0x200:0x202] = b"\xeb\x66"
b[0x202:0x206] = b"HdrS"; struct.pack_into("<H", b, 0x206, 0x20f); struct.pack_into("<I", b, 0x230, 0x200000)
b[0x234] = 1; struct.pack_into("<H", b, 0x236, 1); struct.pack_into("<Q", b, 0x258, 0x1000000)
struct.pack_into("<I", b, 0x260, 0x100000); sys.stdout.buffer.write(b)' >"$work/vmlinuz64"
bad bzimage-tcdb 2 "kernel.tcdb: the database records no build-id location .*vmlinuz64" \
	--kernel "$work/vmlinuz64" --tcdb "$db"
# a bzImage whose kernel_version is another build's than the database's
# banner: refused at open
bad bzimage-version 2 "bid.tcdb is for the kernel \"Linux version 0.1-test .*\", not for the bzImage .*older.bz \(\"0.0-test" \
	--kernel "$work/older.bz" --tcdb "$bzdb"
# --stats-file naming one of the run's own files
cp "$GU_KERNEL" "$work/kernel-copy.elf"
bad stats-file-input 2 "stats-file .*kernel-copy.elf is the kernel: give another file" \
	--kernel "$work/kernel-copy.elf" --stats-file "$work/kernel-copy.elf"
cmp -s "$GU_KERNEL" "$work/kernel-copy.elf" || fail stats-file-input "btvm changed the kernel file"
bad relocatable 2 "testmod.ko: a relocatable object \(ET_REL" --kernel "$build/guests/testmod.ko"
bad no-initrd 2 "initrd .*nosuch.cpio" --kernel "$GU_KERNEL" --initrd "$work/nosuch.cpio"
bad triple 8 "triple fault.*the machine resets" --kernel "$build/tests/guests/tiny-triple.elf"
# the kernel says it panicked through the pvpanic port, as Linux's pvpanic
# driver does from its panic notifier: a prompt stop with its own status
bad pvpanic 12 "the guest kernel panicked \(it said so through the pvpanic device\)" \
	--kernel "$GU_KERNEL" --initrd "$initrd" --cmdline "console=ttyS0 crash=pvpanic"
bad garbage 8 "triple fault" --kernel "$build/tests/guests/tiny-garbage.elf"
bad all-ones 8 "triple fault at rip 0xffffffffffffffff" --kernel "$build/tests/guests/tiny-ones.elf"
# The lifecycle (docs/runtime.md "Exit statuses"): ACPI power-off through
# the FADT the guest finds from the RSDP -> 0; a reset through 0xcf9 or the
# i8042 -> 8; a halt with interrupts off -> 10 (each within the 60 s of
# bad(), never through --timeout)
bad poweroff 0 "acpi: the guest entered S5" --kernel "$build/tests/guests/tiny-poweroff.elf" \
	--log dev:info --timeout 30
bad reset-cf9 8 "0xcf9: the guest asked for a reset" --kernel "$build/tests/guests/tiny-cf9.elf" \
	--log dev:info --timeout 30
bad reset-i8042 8 "0x64: the guest pulsed the reset line" \
	--kernel "$build/tests/guests/tiny-kbd.elf" --log dev:info --timeout 30
bad mmio-store 0 "unclaimed MMIO 0x8000000: first write" \
	--kernel "$build/tests/guests/tiny-mmio.elf" --mem 32M --log dev:info --timeout 30
bad halt 10 "halted with interrupts disabled.*a halt, not a power-off" \
	--kernel "$build/tests/guests/tiny-halt.elf" --timeout 30
bad spin 124 "timeout" --kernel "$other" --timeout 1
bad timeout-huge 2 "timeout 1e30: not a number of seconds" --kernel "$other" --timeout 1e30
bad timeout-nan 2 "timeout nan: not a number of seconds" --kernel "$other" --timeout nan

# A disk image in use by a running VM is refused, naming the holder; once
# that VM is gone (stopped by its PID), the image can be used again.
dd if=/dev/zero of="$work/shared.img" bs=1024 count=1024 status=none
"$btvm" run --kernel "$other" --disk "$work/shared.img" --timeout 60 </dev/null >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do # until the holder has opened (and locked) the disk
	[ -n "$(find /proc/"$holder"/fd -lname "$work/shared.img" 2>/dev/null)" ] && break
	sleep 0.1
done
bad disk-in-use 2 "shared.img is in use: process $holder holds a write lock" \
	--kernel "$other" --disk "$work/shared.img" --timeout 5
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
bad disk-free-again 124 "timeout" --kernel "$other" --disk "$work/shared.img" --timeout 1

echo "btvm-boot: $failures failure(s)"
[ $failures = 0 ]
