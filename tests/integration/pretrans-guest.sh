#!/usr/bin/env bash
# Integration test of the pretrans tool on the test guest kernel, and of its
# handling of bad input.  Usage: pretrans-guest.sh PRETRANS KERNEL_ELF [MODULE_KO]
# (MODULE_KO, an ET_REL kernel module, defaults to testmod.ko next to KERNEL_ELF)
#
# 1. `pretrans build` translates 100% of the guest's function bytes; --jobs 1
#    and --jobs 2 write byte-identical databases; stats, show, verify work.
# 2. Bad inputs each give one clear line on stderr and the documented exit
#    code (1 usage, 2 bad input, 4 I/O, 5 verify mismatch), never a crash;
#    a failed build leaves the previous database intact; an output path
#    that is not a regular file is refused, never replaced.
set -u
P=$(readlink -f "$1")
K=$(readlink -f "$2")
KO=$(readlink -f "${3:-$(dirname "$K")/testmod.ko}")
W=$(mktemp -d /tmp/pretrans-guest.XXXXXX)
trap 'chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"' EXIT
# never the user's database key (make check sets one under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$W/config}
export SOURCE_DATE_EPOCH=1700000000
fails=0
n=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

# expect NAME CODE PATTERN -- CMD...: exit code CODE, stderr one line matching PATTERN
expect() {
	local name=$1 code=$2 pat=$3
	shift 4
	"$@" >"$W/out" 2>"$W/err"
	local rc=$?
	local lines
	lines=$(grep -c . "$W/err")
	if [ "$rc" -ne "$code" ]; then
		fail "$name: exit $rc, expected $code; stderr: $(head -c 300 "$W/err")"
	elif [ "$code" -ne 0 ] && [ "$lines" -ne 1 ]; then
		fail "$name: $lines lines on stderr, expected one: $(head -c 300 "$W/err")"
	elif ! grep -qE -e "$pat" "$W/err"; then
		fail "$name: stderr does not match /$pat/: $(cat "$W/err")"
	else
		pass "$name (exit $rc: $(head -c 160 "$W/err"))"
	fi
}

# --- 1. the guest kernel -----------------------------------------------------
cp "$K" "$W/kernel.elf"
K="$W/kernel.elf"
if "$P" build "$K" -o "$W/j1.tcdb" --jobs 1 2>"$W/err"; then pass "build --jobs 1"; else fail "build --jobs 1: $(cat "$W/err")"; fi
if "$P" build "$K" -o "$W/j2.tcdb" --jobs 2 2>"$W/err"; then pass "build --jobs 2"; else fail "build --jobs 2: $(cat "$W/err")"; fi
if cmp -s "$W/j1.tcdb" "$W/j2.tcdb"; then pass "--jobs 1 and --jobs 2 outputs are identical"; else fail "--jobs 1 and --jobs 2 outputs differ"; fi

if "$P" stats "$W/j1.tcdb" --json >"$W/stats.json" 2>"$W/err"; then pass "stats --json"; else fail "stats --json: $(cat "$W/err")"; fi
if python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d["schema"] != "btkern-pretrans-stats/1")' "$W/stats.json"; then
	pass "stats --json is one JSON object with its schema key"
else
	fail "stats --json: not JSON or no \"schema\": \"btkern-pretrans-stats/1\""
fi
fb=$(sed -n 's/.*"function_bytes": \([0-9]*\).*/\1/p' "$W/stats.json")
tb=$(sed -n 's/.*"translated_bytes": \([0-9]*\).*/\1/p' "$W/stats.json")
if [ -n "$fb" ] && [ "$fb" -gt 10000 ] && [ "$fb" = "$tb" ]; then
	pass "100% of function bytes translated ($tb of $fb)"
else
	fail "function bytes translated: ${tb:-?} of ${fb:-?} (need 100%); refusals: $(grep -o '"refusals".*' "$W/stats.json")"
fi
if "$P" stats "$W/j1.tcdb" >"$W/stats.txt" 2>"$W/err" && grep -q "^exits by kind" "$W/stats.txt"; then
	pass "stats (text)"
else
	fail "stats (text): $(cat "$W/err")"
fi

fn=$(nm "$K" | awk '$2 ~ /^[Tt]$/ && $3 == "kmain" {print $3}')
[ -n "$fn" ] || fn=$(nm -S --size-sort "$K" | awk '$3 ~ /^[Tt]$/ {n=$4} END {print n}')
if "$P" show "$W/j1.tcdb" "$fn" >"$W/show" 2>"$W/err" && grep -q "^block " "$W/show" &&
	grep -q "exit 0:" "$W/show" && grep -Eq "^ +\+0000  " "$W/show"; then
	pass "show $fn ($(grep -c '^block ' "$W/show") blocks)"
else
	fail "show $fn: $(cat "$W/err") $(head -5 "$W/show")"
fi
addr=$(nm "$K" | awk -v f="$fn" '$3 == f {print "0x" $1}')
if "$P" show "$W/j1.tcdb" "$addr" --image "$K" >"$W/show2" 2>"$W/err" && cmp -s "$W/show" "$W/show2"; then
	pass "show by address $addr gives the same listing"
else
	fail "show by address $addr: $(cat "$W/err")"
fi
expect "show of an unknown symbol" 2 "no function 'no_such_function'" -- "$P" show "$W/j1.tcdb" no_such_function

if "$P" verify "$W/j1.tcdb" "$K" >"$W/out" 2>"$W/err" && grep -q " 0 guest-hash mismatches, 0 re-translation mismatches" "$W/out"; then
	pass "verify: $(cat "$W/out")"
else
	fail "verify: $(cat "$W/out") $(cat "$W/err")"
fi
if "$P" verify "$W/j1.tcdb" "$K" --sample 50 >"$W/out" 2>"$W/err" && grep -q "mismatches" "$W/out"; then
	pass "verify --sample 50: $(cat "$W/out")"
else
	fail "verify --sample 50: $(cat "$W/out") $(cat "$W/err")"
fi

read -r tva toff < <(readelf -SW "$K" | awk '{for (i = 1; i < NF; i++) if ($i == ".text") print $(i + 2), $(i + 3)}')
if "$P" xcheck "$K" >"$W/out" 2>"$W/err" && grep -qE "^  agree +[1-9]" "$W/out"; then
	pass "xcheck: $(tr -s ' \n' ' ' <"$W/out" | head -c 200)"
else
	fail "xcheck: $(cat "$W/out" "$W/err")"
fi

# jump tables: every entry of the kernel's jump tables (the guest's
# tests_cpu.c is built with -fjump-tables) starts a translated block; the
# first `jmp *table(,%reg,8)` of the image is checked (in a sized function
# the gap sweep would find contiguous cases too; test_discover proves the
# table recovery itself on a stripped image)
# the translated starts of j1.tcdb (keys, decimal), from its start index
# (pack kind 1): a build's blocks are listed in their chunks, not in rows
python3 - "$W/j1.tcdb" >"$W/j1.starts" <<'PY'
import sqlite3, subprocess, sys
z = sqlite3.connect(sys.argv[1]).execute("SELECT data FROM packs WHERE kind = 1").fetchone()[0]
raw = subprocess.run(["zstd", "-q", "-d", "-c"], input=z, stdout=subprocess.PIPE,
                     check=True).stdout
va = i = 0
while i < len(raw):
    d = sh = 0
    while True:
        c = raw[i]
        i += 1
        d |= (c & 0x7f) << sh
        sh += 7
        if not c & 0x80:
            break
    va += d
    print(va ^ 0xffffffff80000000)
PY
jt_line=$(objdump -d --no-show-raw-insn "$K" | grep -m1 -E 'jmp +\*-0x[0-9a-f]+\(,%r[a-z0-9]+,8\)')
jt_neg=$(echo "$jt_line" | sed -n 's/.*\*-0x\([0-9a-f]*\)(,.*/\1/p')
if [ -n "$jt_neg" ]; then
	tbl=$(( -16#$jt_neg ))
	read -r rva roff < <(readelf -SW "$K" | awk '{for (i = 1; i < NF; i++) if ($i == ".rodata") print $(i + 2), $(i + 3)}')
	toff2=$(( tbl - 16#$rva + 16#$roff ))
	total=0 hits=0
	for e in $(od -An -v -t x8 -j "$toff2" -N 512 "$K"); do
		ev=$(( 16#$e ))
		(( ev >= 16#$tva && ev < 16#$tva + 0x100000 )) || break
		key=$(( ev ^ 0xffffffff80000000 ))
		total=$((total + 1))
		grep -qx "$key" "$W/j1.starts" && hits=$((hits + 1))
	done
	if [ "$total" -gt 3 ] && [ "$hits" = "$total" ]; then
		pass "jump table at $(printf '%#x' "$tbl"): all $total targets start translated blocks"
	else
		fail "jump table at $(printf '%#x' "$tbl"): $hits of $total targets start translated blocks"
	fi
else
	fail "no jmp *table(,%reg,8) found in the guest kernel"
fi

# exception-table fixups (Linux layout: s32 insn - ., s32 fixup - ., s32
# data) each start a translated block, in sized or asm functions alike
read -r xva xoff xsz < <(readelf -SW "$K" | awk '{for (i = 1; i < NF; i++) if ($i == "__ex_table") print $(i + 2), $(i + 3), $(i + 4)}')
if [ -n "${xva:-}" ]; then
	total=0 hits=0 i=0
	set -- $(od -An -v -t d4 -j $((16#$xoff)) -N $((16#$xsz)) "$K")
	while [ $# -ge 3 ]; do
		fix=$(( 16#$xva + 12 * i + 4 + $2 ))
		key=$(( fix ^ 0xffffffff80000000 ))
		total=$((total + 1))
		grep -qx "$key" "$W/j1.starts" && hits=$((hits + 1))
		shift 3
		i=$((i + 1))
	done
	if [ "$total" -gt 0 ] && [ "$hits" = "$total" ]; then
		pass "__ex_table: all $total fixups start translated blocks"
	else
		fail "__ex_table: $hits of $total fixups start translated blocks"
	fi
else
	fail "the guest kernel has no __ex_table"
fi

# --- 2. bad images -------------------------------------------------------------
head -c 3000 "$K" >"$W/trunc.elf"
expect "truncated ELF" 2 "trunc.elf: truncated ELF" -- "$P" build "$W/trunc.elf" -o "$W/x.tcdb"

cp "$K" "$W/badsh.elf"
# e_shoff (offset 40, 8 bytes) -> 0x7fffffff00
printf '\x00\xff\xff\xff\x7f\x00\x00\x00' | dd of="$W/badsh.elf" bs=1 seek=40 conv=notrunc status=none
expect "corrupt section table" 2 "badsh.elf: truncated ELF: section header table" -- "$P" build "$W/badsh.elf" -o "$W/x.tcdb"

cp "$K" "$W/badsec.elf"
# e_shentsize (offset 58, 2 bytes) -> 32
printf '\x20\x00' | dd of="$W/badsec.elf" bs=1 seek=58 conv=notrunc status=none
expect "corrupt section entry size" 2 "badsec.elf: corrupt section header table" -- "$P" build "$W/badsec.elf" -o "$W/x.tcdb"

objcopy -O elf32-i386 "$K" "$W/k32.elf" 2>/dev/null
expect "32-bit ELF" 2 "k32.elf: 32-bit ELF" -- "$P" build "$W/k32.elf" -o "$W/x.tcdb"

cp "$K" "$W/arm.elf"
# e_machine (offset 18) -> EM_ARM (40)
printf '\x28\x00' | dd of="$W/arm.elf" bs=1 seek=18 conv=notrunc status=none
expect "ARM ELF" 2 "arm.elf: ELF for machine 40 \(ARM\)" -- "$P" build "$W/arm.elf" -o "$W/x.tcdb"

objcopy -j .rodata "$K" "$W/nocode.elf" 2>/dev/null
expect "ELF without code" 2 "nocode.elf: no executable section" -- "$P" build "$W/nocode.elf" -o "$W/x.tcdb"

# a relocatable object (the boot loader refuses it with the same line)
if [ -f "$KO" ]; then
	cp "$KO" "$W/mod.ko"
	expect "a module alone points at --modules" 2 "mod.ko: a relocatable object \(ET_REL, e.g. a .ko module\), not a linked image: .*--modules" -- "$P" build "$W/mod.ko" -o "$W/x.tcdb"
	# --modules (docs/kmod.md): the module stored as templates, the same
	# file for any --jobs; bad module files fail naming them
	expect "build --modules" 0 "modules: 1 stored, 0 of another release skipped.* [1-9][0-9]* templates \(100.00% relocatable" -- "$P" build "$K" --modules "$W/mod.ko" -o "$W/m1.tcdb" --jobs 1
	"$P" build "$K" --modules "$W" -o "$W/m2.tcdb" --jobs 2 2>/dev/null
	if cmp -s "$W/m1.tcdb" "$W/m2.tcdb"; then pass "--modules FILE --jobs 1 and --modules DIR --jobs 2 outputs are identical"; else fail "--modules outputs differ"; fi
	row=$(sqlite3 "$W/m1.tcdb" "SELECT name || ' ' || n_templates FROM modules" 2>&1)
	case "$row" in "mod "[1-9]*) pass "modules row: $row" ;; *) fail "modules row: $row" ;; esac
	mkdir -p "$W/bad"
	head -c $(($(stat -c %s "$W/mod.ko") / 2)) "$W/mod.ko" >"$W/bad/cut.ko"
	expect "truncated module" 2 "cut.ko: truncated ELF" -- "$P" build "$K" --modules "$W/bad/cut.ko" -o "$W/x.tcdb"
	echo "not a module" >"$W/bad/junk.ko"
	expect "non-ELF module" 2 "junk.ko: not an ELF file" -- "$P" build "$K" --modules "$W/bad/junk.ko" -o "$W/x.tcdb"
	printf 'vermagic=9.9.9-other SMP mod_unload\0name=other\0' >"$W/modinfo"
	objcopy --add-section .modinfo="$W/modinfo" "$W/mod.ko" "$W/bad/other.ko"
	expect "module of another release" 0 "other.ko: built for release '9.9.9-other'.*skipped" -- "$P" build "$K" --modules "$W/bad/other.ko" -o "$W/x.tcdb"
	grep -q "modules: 0 stored, 1 of another release skipped" "$W/err" && pass "another release: counted as skipped" || fail "another release: $(cat "$W/err")"
else
	fail "no kernel module $KO to build (make it with make $KO)"
fi

echo "this is not an ELF file" >"$W/text.elf"
expect "non-ELF file" 2 "text.elf: not an ELF file" -- "$P" build "$W/text.elf" -o "$W/x.tcdb"
expect "missing image" 4 "nothere.elf: cannot open" -- "$P" build "$W/nothere.elf" -o "$W/x.tcdb"

strip -o "$W/stripped.elf" "$K"
if "$P" build "$W/stripped.elf" -o "$W/stripped.tcdb" 2>"$W/err" &&
	"$P" stats "$W/stripped.tcdb" --json >"$W/sj" 2>>"$W/err" &&
	grep -q '"functions": 0, "seed_regions": [1-9]' "$W/sj" &&
	blocks=$(sed -n 's/.*"blocks": \([0-9]*\),.*/\1/p' "$W/sj") &&
	full=$(sed -n 's/.*"blocks": \([0-9]*\),.*/\1/p' "$W/stats.json") &&
	[ "$((blocks * 2))" -gt "$full" ]; then
	pass "stripped image works from the entry point and code pointers in data ($blocks blocks, $full with symbols, $(grep -o '"seed_regions": [0-9]*' "$W/sj"))"
else
	fail "stripped image: $(cat "$W/err") $(head -c 400 "$W/sj" 2>/dev/null)"
fi
"$P" build "$W/stripped.elf" -o "$W/stripped1.tcdb" --jobs 1 2>/dev/null
"$P" build "$W/stripped.elf" -o "$W/stripped3.tcdb" --jobs 3 2>/dev/null
if cmp -s "$W/stripped1.tcdb" "$W/stripped3.tcdb"; then
	pass "stripped image (discovery in rounds): --jobs 1 and --jobs 3 outputs are identical"
else
	fail "stripped image: --jobs 1 and --jobs 3 outputs differ"
fi
# the same kernel with one code byte changed (an int3 at the start of $fn)
cp "$K" "$W/patched.elf"
poff=$(( addr - 16#$tva + 16#$toff ))
printf '\xcc' | dd of="$W/patched.elf" bs=1 seek="$poff" conv=notrunc status=none
"$P" verify "$W/j1.tcdb" "$W/patched.elf" >"$W/out" 2>"$W/err"
rc=$?
if [ $rc -eq 5 ] && grep -q "guest bytes differ from the image" "$W/err" &&
	grep -q "[1-9][0-9]* guest-hash mismatches" "$W/out"; then
	pass "verify against a patched image finds the changed block (exit 5: $(cat "$W/out"))"
else
	fail "verify against a patched image: exit $rc $(cat "$W/out") $(cat "$W/err")"
fi

# --- 3. outputs ----------------------------------------------------------------
cp "$W/j1.tcdb" "$W/keep.tcdb"
python3 -c 'import sys; b = bytearray(4096); b[0x1fe:0x200] = b"\x55\xaa"; b[0x202:0x206] = b"HdrS"; sys.stdout.buffer.write(b)' >"$W/vmlinuz"
expect "bzImage" 2 "vmlinuz: a compressed bzImage, not an ELF file" -- "$P" build "$W/vmlinuz" -o "$W/x.tcdb"
expect "failed build keeps the previous database" 2 "not an ELF file" -- "$P" build "$W/text.elf" -o "$W/keep.tcdb"
if cmp -s "$W/j1.tcdb" "$W/keep.tcdb" && ! ls "$W"/keep.tcdb.tmp-* >/dev/null 2>&1; then
	pass "previous database intact, no temporary left"
else
	fail "previous database changed or temporary left behind"
fi
expect "output in a missing directory" 4 "cannot create the temporary output" -- "$P" build "$K" -o "$W/no/such/dir/x.tcdb"
# an unwritable output directory (as an unprivileged user when run as root)
mkdir "$W/ro"
cp "$W/j1.tcdb" "$W/ro/prev.tcdb"
chmod 0555 "$W/ro"
chmod 0755 "$W"
chmod 0644 "$K"
AS=()
if [ "$(id -u)" = 0 ]; then
	cp "$P" "$W/pretrans"
	chmod 0755 "$W/pretrans"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	PP="$W/pretrans"
else
	PP=$P
fi
expect "unwritable output directory" 4 "ro/prev.tcdb: cannot create the temporary output.*Permission denied" -- "${AS[@]}" "$PP" build "$K" -o "$W/ro/prev.tcdb"
if cmp -s "$W/j1.tcdb" "$W/ro/prev.tcdb"; then pass "previous database in the unwritable directory intact"; else fail "previous database in the unwritable directory changed"; fi
chmod 0755 "$W/ro"

# outputs that are not regular files, all made here in $W (never a real
# device path: a broken check would replace it): each refused with exit 4
# and one line before anything is written, the node still of its type, no
# temporary left
no_tmp() { ! ls "$W"/*.tmp-* >/dev/null 2>&1; }
refused() { # NAME TEST PATH PATTERN: refused, `test TEST PATH` holds afterwards
	expect "output is $1" 4 "$4" -- timeout 60 "$P" build "$K" -o "$3"
	if test "$2" "$3" && no_tmp; then pass "$1 still $2 after the refusal, no temporary left"; else fail "$1 changed or temporary left: $(ls -la "$W" | grep -E 'node|tmp-')"; fi
}
mkfifo "$W/node-fifo"
refused "a FIFO" -p "$W/node-fifo" "node-fifo: is a FIFO, not a regular file: refusing to replace it"
mkdir "$W/node-dir"
refused "a directory" -d "$W/node-dir" "node-dir: is a directory, not a regular file: refusing to replace it"
ln -s "$W/node-fifo" "$W/node-to-fifo"
refused "a symlink to a FIFO" -L "$W/node-to-fifo" "node-to-fifo: is a symlink to a FIFO, not to a regular file"
[ -p "$W/node-fifo" ] && pass "the FIFO behind the symlink is still a FIFO" || fail "the FIFO behind the symlink changed"
if [ "$(id -u)" = 0 ] && mknod "$W/node-chr" c 1 3 2>/dev/null; then
	refused "a character device" -c "$W/node-chr" "node-chr: is a character device, not a regular file: refusing to replace it"
	ln -s "$W/node-chr" "$W/node-to-chr"
	refused "a symlink to a character device" -L "$W/node-to-chr" "node-to-chr: is a symlink to a character device"
	[ -c "$W/node-chr" ] && pass "the device behind the symlink is still a character device" || fail "the device behind the symlink changed"
else
	echo "# skipped: output is a character device (mknod needs root; running as uid $(id -u))"
fi

# a full file system during a build (RLIMIT_FSIZE with SIGXFSZ ignored:
# writes past 256 KiB fail with EFBIG): the real error only (no spurious
# "cannot rollback"), exit 4, the previous database intact, no temporary
cp "$W/j1.tcdb" "$W/full.tcdb"
(trap '' XFSZ; ulimit -f 256; exec "$P" build "$K" -o "$W/full.tcdb") 2>"$W/err"
rc=$?
if [ $rc -eq 4 ] && [ "$(grep -c . "$W/err")" = 1 ] && ! grep -qi "rollback" "$W/err" &&
	cmp -s "$W/j1.tcdb" "$W/full.tcdb" && no_tmp; then
	pass "build on a full file system: exit 4, one line ($(cat "$W/err")), previous database intact"
else
	fail "build on a full file system: exit $rc, stderr: $(cat "$W/err"); $(cmp "$W/j1.tcdb" "$W/full.tcdb" 2>&1)"
fi

# an interrupted build (SIGTERM after 1 s of a long one: libLLVM, ~30 s)
# removes its temporary file and leaves the previous database as it was
big=$(readlink -f "$(llvm-config-14 --libdir 2>/dev/null || llvm-config --libdir)/libLLVM-14.so" 2>/dev/null || true)
if [ -n "$big" ] && [ -f "$big" ]; then
	cp "$W/j1.tcdb" "$W/int.tcdb"
	"$P" build "$big" -o "$W/int.tcdb" --jobs 1 2>"$W/err" &
	bpid=$!
	sleep 1
	kill -TERM "$bpid"
	wait "$bpid"
	rc=$?
	if [ $rc -eq 143 ] && cmp -s "$W/j1.tcdb" "$W/int.tcdb" && ! ls "$W"/int.tcdb.tmp-* >/dev/null 2>&1 &&
		grep -q "interrupted by signal 15" "$W/err"; then
		pass "SIGTERM during a build: exit 143, previous database intact, no temporary left"
	else
		fail "SIGTERM during a build: exit $rc, $(cat "$W/err"); $(ls "$W" | grep int.tcdb)"
	fi
else
	fail "no libLLVM-14.so to run a long build on"
fi

# --- 4. bad databases ----------------------------------------------------------
sz=$(stat -c %s "$W/j1.tcdb")
head -c $((sz / 2)) "$W/j1.tcdb" >"$W/trunc.tcdb"
expect "truncated database" 2 "trunc.tcdb: truncated or corrupt database" -- "$P" stats "$W/trunc.tcdb"
head -c 50 "$W/j1.tcdb" >"$W/trunc2.tcdb"
expect "database cut inside its header" 2 "trunc2.tcdb: truncated database" -- "$P" stats "$W/trunc2.tcdb"
head -c 65536 /dev/urandom >"$W/random.tcdb"
expect "random bytes as database" 2 "random.tcdb: not a translation database" -- "$P" stats "$W/random.tcdb"
sqlite3 "$W/foreign.tcdb" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES('x');"
expect "another application's sqlite database" 2 "foreign.tcdb: an sqlite database of another application" -- "$P" stats "$W/foreign.tcdb"
cp "$W/j1.tcdb" "$W/oldxlat.tcdb"
sqlite3 "$W/oldxlat.tcdb" "UPDATE provenance SET xlat_version = 999"
expect "database of another translator version" 2 "oldxlat.tcdb was written by translator v999.*rebuild it with .pretrans build" -- "$P" stats "$W/oldxlat.tcdb"
cp "$W/j1.tcdb" "$W/schema.tcdb"
sqlite3 "$W/schema.tcdb" "PRAGMA user_version = 6"
expect "database of another schema" 2 "schema.tcdb: database schema version 6" -- "$P" stats "$W/schema.tcdb"
expect "show with another image" 2 "is not the image the database was built from" -- "$P" show "$W/j1.tcdb" "$fn" --image "$W/stripped.elf"
expect "missing database" 4 "nothere.tcdb: cannot open" -- "$P" stats "$W/nothere.tcdb"

# --- 5. usage ------------------------------------------------------------------
expect "no command" 2 "usage: pretrans COMMAND" -- "$P"
expect "build without -o" 2 "need one IMAGE and -o" -- "$P" build "$K"
expect "bad --jobs" 2 "--jobs wants a number" -- "$P" build "$K" -o "$W/x.tcdb" --jobs 0
# every command names the option or argument it refuses (docs/cli.md)
expect "stats: unknown option named" 2 "stats: option '--bogus' is unknown" -- "$P" stats "$W/j1.tcdb" --bogus
expect "stats: extra argument named" 2 "stats: unexpected argument 'extra'" -- "$P" stats "$W/j1.tcdb" extra
expect "verify: unknown option named" 2 "verify: option '--bogus' is unknown" -- "$P" verify "$W/j1.tcdb" "$K" --bogus
expect "verify: --sample without N" 2 "verify: --sample needs a number" -- "$P" verify "$W/j1.tcdb" "$K" --sample
expect "verify: --sample not a number" 2 "verify: --sample wants a positive number, not 'x'" -- "$P" verify "$W/j1.tcdb" "$K" --sample x
expect "xcheck: unknown option named" 2 "xcheck: option '--bogus' is unknown" -- "$P" xcheck --bogus
expect "build: unknown option named" 2 "option '--bogus' is unknown" -- "$P" build "$K" -o "$W/x.tcdb" --bogus
for c in build stats show verify xcheck kpatch; do
	if "$P" $c --help >"$W/out" 2>&1 && grep -q "^usage: pretrans $c" "$W/out"; then pass "$c --help"; else fail "$c --help"; fi
done
if "$P" --version | grep -q "^pretrans .*translator v"; then pass "--version"; else fail "--version"; fi

echo "pretrans-guest: $((n - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
