#!/usr/bin/env bash
# `pretrans build NEW --reuse OLD.tcdb` (docs/diff.md, "reuse") must write
# exactly the database a full build of NEW writes.  For each pair, with
# --jobs 1 and 2: every table compared row by row and column by column
# (the chunks' compressed bytes, which hold the blocks' directories since
# schema 7: start, length, instruction count, guest hash, flags, refusal,
# payload offset, function; learned rows, none here; the packs, block
# templates and the chunk map among them; functions; image; provenance),
# `pretrans stats --json`,
# and the files byte for byte; plus the reuse counts the pair implies.
# Bad input: OLD from other translator options or another translator
# version, a file that is not a database, a stripped OLD or NEW.
#
#   tests/integration/reuse-build.sh PRETRANS DIFFPAIR_DIR KERNEL KERNEL_RELINKED KERNEL_ROTATED \
#       KERNEL_ROTATED_ALT
set -euo pipefail

pretrans=$1
dp=$2
kernel=$3
relinked=$4
rotated=$5
rotated_alt=$6
export SOURCE_DATE_EPOCH=1
tmp=$(mktemp -d /tmp/reuse-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# never the user's database key (make check sets one under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$tmp/config}
fails=0
checks=0

fail() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}

# Rows of every table in a canonical order, blobs in hex.
dump() {
	sqlite3 "$1" <<'SQL'
.mode list
SELECT 'image', path, build_id, sha256, entry, arch, build_id_va, banner FROM image;
SELECT 'prov', xlat_version, vcpu_abi_version, options_hash, options_flags, tool_version, created FROM provenance;
SELECT 'meta', key, value FROM meta ORDER BY key;
SELECT 'func', id, name, address, size, bytes_hash, section, covered_bytes, refused_bytes, kind FROM functions ORDER BY id;
SELECT 'block', guest_start, guest_len, n_insns, guest_hash, flags, refusal, refusal_addr, hex(code), hex(exits), hex(pcmap), function_id, origin, chunk, payload_off FROM blocks ORDER BY guest_start;
SELECT 'chunk', id, raw_len, func0, hex(data) FROM chunks ORDER BY id;
SELECT 'pack', kind, codec, raw_len, n_items, hex(data) FROM packs ORDER BY kind;
SELECT 'run', count(*) FROM run_stats;
SQL
}

# same FULL INC: the incremental database equals the full one
same() {
	local full=$1 inc=$2 label=$3
	checks=$((checks + 1))
	dump "$full" >"$tmp/full.dump"
	dump "$inc" >"$tmp/inc.dump"
	if ! cmp -s "$tmp/full.dump" "$tmp/inc.dump"; then
		fail "$label: tables differ from the full build's:"
		diff "$tmp/full.dump" "$tmp/inc.dump" | cut -c1-160 | head -5
		return
	fi
	local nb
	nb=$(grep -c '^chunk|' "$tmp/full.dump")
	[ "$nb" -gt 0 ] || fail "$label: no chunks (no blocks) at all"
	"$pretrans" stats "$full" --json >"$tmp/full.json"
	"$pretrans" stats "$inc" --json >"$tmp/inc.json"
	cmp -s "$tmp/full.json" "$tmp/inc.json" || fail "$label: stats --json differ"
	cmp -s "$full" "$inc" || fail "$label: files not byte-identical"
}

# counts LOG -> "reused translated moved" (moved: of the reused, OLD's
# templates instantiated at a moved function's new address)
counts() {
	sed -n 's/.* \([0-9,]*\) blocks reused (\([0-9,]*\) of them moved[^)]*), \([0-9,]*\) translated.*/\1 \3 \2/p' \
		"$1" | tr -d ,
}

# pair NAME OLD_IMAGE NEW_IMAGE EXPECT [MOVED]: EXPECT is all (nothing
# translated but refused regions and cuts decided by the next bytes), some
# (both reused and translated blocks) or none (nothing reused); MOVED is
# how many of the reused blocks come from moved functions' templates: none,
# some, or all (every reused block: the functions all moved)
pair() {
	local name=$1 oimg=$2 nimg=$3 expect=$4 moved=${5:-none} j r t m
	"$pretrans" build "$oimg" -o "$tmp/old.tcdb" -j 2 2>/dev/null
	for j in 1 2; do
		"$pretrans" build "$nimg" -o "$tmp/full.tcdb" -j "$j" 2>/dev/null
		"$pretrans" build "$nimg" -o "$tmp/inc.tcdb" -j "$j" --reuse "$tmp/old.tcdb" \
			2>"$tmp/log" || {
			fail "$name -j$j: --reuse build failed: $(cat "$tmp/log")"
			continue
		}
		same "$tmp/full.tcdb" "$tmp/inc.tcdb" "$name -j$j"
		read -r r t m < <(counts "$tmp/log")
		checks=$((checks + 2))
		case $moved in
		none) [ "$m" -eq 0 ] || fail "$name -j$j: expected no moved block, got $m" ;;
		some) if [ "$m" -eq 0 ] || [ "$m" -ge "$r" ]; then
			fail "$name -j$j: expected some of $r reused blocks moved, got $m"
		fi ;;
		all) [ "$m" -eq "$r" ] || fail "$name -j$j: expected all $r reused blocks moved, got $m" ;;
		esac
		case $expect in
		all) if [ "$r" -eq 0 ] || [ "$t" -gt $((r / 20)) ]; then
			fail "$name -j$j: expected nearly all reused, got $r reused $t translated"
		fi ;;
		some) if [ "$r" -eq 0 ] || [ "$t" -eq 0 ]; then
			fail "$name -j$j: expected a mix, got $r reused $t translated"
		fi ;;
		none) if [ "$r" -ne 0 ]; then
			fail "$name -j$j: expected nothing reused, got $r reused $t translated"
		fi ;;
		esac
		echo "  $name -j$j: $r reused ($m moved), $t translated, identical to the full build"
	done
}

strip -o "$tmp/base-stripped.elf" "$dp/base.elf"
strip -o "$tmp/kernel-stripped.elf" "$kernel"

pair "diffpair base->base" "$dp/base.elf" "$dp/base.elf" all
pair "diffpair base->change" "$dp/base.elf" "$dp/change.elf" some
pair "diffpair change->base" "$dp/change.elf" "$dp/base.elf" some
pair "diffpair base->shift" "$dp/base.elf" "$dp/shift.elf" all all
# moved and changed: the changed function's blocks must not come from OLD
pair "diffpair shift->change" "$dp/shift.elf" "$dp/change.elf" some all
pair "diffpair stripped->base" "$tmp/base-stripped.elf" "$dp/base.elf" some
pair "diffpair base->stripped" "$dp/base.elf" "$tmp/base-stripped.elf" all
pair "kernel->kernel" "$kernel" "$kernel" all
pair "kernel->relinked" "$kernel" "$relinked" some some
pair "kernel stripped->kernel" "$tmp/kernel-stripped.elf" "$kernel" some
# every function moved (by 0x... not a page multiple: blocks that would end
# elsewhere on their page are translated), the predicted-patching versions
# of its .altinstructions sites too
# predicted NAME FROM_OLD TRANSLATED: the last --reuse build's predicted-patching
# versions (from OLD's templates, translated)
predicted() {
	checks=$((checks + 1))
	local pv
	pv=$(sed -n 's/.*predicted-patching versions: \([0-9,]*\) from OLD.s templates, \([0-9,]*\) translated.*/\1 \2/p' "$tmp/log" | tr -d ,)
	if [ "$pv" = "$2 $3" ]; then
		echo "  $1: predicted-patching versions: $2 from OLD's templates, $3 translated"
	else
		fail "$1: predicted-patching versions: '$pv', expected '$2 $3'"
	fi
}
pair "kernel->rotated" "$kernel" "$rotated" all some
predicted "kernel->rotated" 4 0
# ... with alt_sse2's replacement changed: its predicted version moved and
# changed (translated), the other three still from OLD
pair "kernel->rotated, a replacement changed" "$kernel" "$rotated_alt" all some
predicted "kernel->rotated, a replacement changed" 3 1

# --- in place: OUT is OLD (renamed over while still open) ----------------------
checks=$((checks + 1))
"$pretrans" build "$dp/base.elf" -o "$tmp/inplace.tcdb" 2>/dev/null
"$pretrans" build "$dp/change.elf" -o "$tmp/full.tcdb" 2>/dev/null
if "$pretrans" build "$dp/change.elf" -o "$tmp/inplace.tcdb" --reuse "$tmp/inplace.tcdb" \
	2>"$tmp/log"; then
	same "$tmp/full.tcdb" "$tmp/inplace.tcdb" "in place"
	echo "  in place: $(counts "$tmp/log" | awk '{print $1 " reused, " $2 " translated"}')"
else
	fail "in place: $(cat "$tmp/log")"
fi

# --- refusals: exit 2 (4 for a missing file) and a message saying what to do --
refuse() { # LABEL PATTERN OLD [EXIT]
	checks=$((checks + 1))
	local rc=0 want=${4:-2}
	"$pretrans" build "$dp/base.elf" -o "$tmp/out.tcdb" --reuse "$3" 2>"$tmp/log" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$1: exit $rc, want $want ($(head -c 300 "$tmp/log"))"
	elif ! grep -q "$2" "$tmp/log"; then
		fail "$1: message lacks '$2': $(head -c 300 "$tmp/log")"
	elif [ -e "$tmp/out.tcdb" ]; then
		fail "$1: an output was written"
	else
		echo "  refused $1: $(grep -m1 -- "--reuse\|reuse" "$tmp/log" | cut -c1-150)"
	fi
}
"$pretrans" build "$dp/base.elf" -o "$tmp/nox.tcdb" --no-crosscheck 2>/dev/null
refuse "other options" "translator options" "$tmp/nox.tcdb"
"$pretrans" build "$dp/base.elf" -o "$tmp/v1.tcdb" 2>/dev/null
sqlite3 "$tmp/v1.tcdb" "UPDATE provenance SET xlat_version = xlat_version + 100"
refuse "other translator version" "translator" "$tmp/v1.tcdb"
cp "$tmp/v1.tcdb" "$tmp/nt.tcdb"
sqlite3 "$tmp/nt.tcdb" "UPDATE provenance SET xlat_version = xlat_version - 100; DELETE FROM packs WHERE kind = 6"
refuse "no block templates" "no block templates" "$tmp/nt.tcdb"
"$pretrans" build "$dp/base.elf" -o "$tmp/tt.tcdb" 2>/dev/null
sqlite3 "$tmp/tt.tcdb" "UPDATE packs SET n_items = n_items + 1 WHERE kind = 6"
refuse "tampered block templates" "block-template pack fails its authentication" "$tmp/tt.tcdb"
echo "not a database" >"$tmp/junk.tcdb"
refuse "not a database" "reuse" "$tmp/junk.tcdb"
refuse "missing file" "cannot open" "$tmp/absent.tcdb" 4

echo "reuse-build: $checks checks, $fails failures"
[ "$fails" -eq 0 ]
