#!/usr/bin/env bash
# A translation database is code: btvm runs only host code this user's key
# signed (check step check-db-trust; docs/db.md "Trust").
#
#   tests/integration/db-trust.sh BUILD_DIR
#
# Scenarios (the test guest, test=kernel with its initrd; status 1 = every
# kernel test ok):
#   chunk-code    every block's host code in every chunk starts with
#                 exit(42) of the VMM (inflated, patched, compressed again, as
#                 a reviewer did): btvm must not exit 42; one line names the
#                 database and a block; the guest boots from run-time
#                 translations; pretrans stats/verify/show refuse it, and
#                 verify --sign does not sign it
#   inline-code   the same in every learned (inline) row
#   flip-chunk    one bit in the chunk of the entry block: the line names a
#                 block of that chunk
#   flip-pcmap    one bit of every learned row's pc map
#   flip-profile  one bit of the boot profile pack --learn wrote: refused at
#                 load with a line naming the pack, nothing served from the
#                 database, the guest boots from run-time translations
#   flip-user-pack, flip-user-index
#                 one bit of the user-template pack or its fingerprint index
#                 a --learn boot with user programs wrote: one line naming
#                 the pack, no user block from the database, the programs pass
#   resigned      a learned row whose exit target was altered and whose tag
#                 was recomputed with the key: accepted by tcdb, caught by
#                 --verify-db (so the key is the whole trust)
#   other-key     a database built with another key: refused at open with
#                 how to trust it; accepted after `pretrans verify --sign`
#   writable      a group-writable database: refused ("chmod go-w")
#   bad-key       a key file readable by others: refused
#   new-key       the first use makes a 32-byte key, mode 0600, in a 0700
#                 directory
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/btvm-lib.sh"
BT_TAG="db-trust"

build=${1:?usage: db-trust.sh BUILD_DIR}
btvm=$build/bin/btvm
pretrans=$build/bin/pretrans
kernel=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
tamper=$here/tcdb-tamper.py
for f in "$btvm" "$pretrans" "$kernel" "$initrd"; do
	if [ ! -e "$f" ]; then
		echo "db-trust: $f is missing: build it with make BUILD=$build" >&2
		exit 1
	fi
done
work=$(mktemp -d /tmp/db-trust.XXXXXX)
trap 'rm -rf "$work"' EXIT
# never the user's key (make check sets a key directory under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config}
key=$XDG_CONFIG_HOME/btkern/db.key

boot() { # NAME DB [btvm-args]: a boot that must succeed (status 1)
	local name=$1 db=$2
	shift 2
	run "$name" 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$db" \
		--cmdline "console=ttyS0 test=kernel" --stats=json "$@" || return 1
	grep -q '^not ok' "$work/$name/console.raw" && fail "$name" "a kernel test failed"
	return 0
}

refused() { # NAME DBNAME: one authentication line naming DBNAME and a block
	local n
	n=$(grep -c "$2: block at 0x[0-9a-f]* .*fails its authentication: changed after it was written, or written with another key" "$work/$1/stderr")
	if [ "$n" != 1 ]; then
		fail "$1" "$n authentication lines for $2, expected 1: $(head -c 600 "$work/$1/stderr")"
		return 1
	fi
	echo "db-trust: [$1] ok: $(grep -o "block at 0x[0-9a-f]*[^:]*fails its authentication" "$work/$1/stderr")"
}

db=$work/kernel.tcdb
"$pretrans" build "$kernel" -o "$db" >"$work/build.log" 2>&1 ||
	fail build "pretrans build failed: $(tail -n 3 "$work/build.log")"
boot warm "$db"
grep -q "fails its authentication" "$work/warm/stderr" && fail warm "an untouched database failed"
[ "$(json "$work/warm/stderr" from_db)" -gt 0 ] || fail warm "no block came from the database"

# --- host code changed in chunks ------------------------------------------------
cp "$db" "$work/chunk.tcdb"
python3 "$tamper" "$work/chunk.tcdb" chunk-code >"$work/chunk.blocks"
if boot chunk-code "$work/chunk.tcdb"; then
	refused chunk-code chunk.tcdb
	[ "$(json "$work/chunk-code/stderr" from_db)" = 0 ] ||
		fail chunk-code "blocks of a changed database were used"
fi
for cmd in stats verify show; do
	case $cmd in
	stats) args=("$work/chunk.tcdb") ;;
	verify) args=("$work/chunk.tcdb" "$kernel") ;;
	show) args=("$work/chunk.tcdb" "$(head -c 18 "$work/chunk.blocks")") ;;
	esac
	"$pretrans" "$cmd" "${args[@]}" >"$work/$cmd.out" 2>"$work/$cmd.err"
	st=$?
	if [ $st = 0 ] || ! grep -q "fails its authentication" "$work/$cmd.err"; then
		fail "pretrans-$cmd" "status $st; stderr: $(head -c 300 "$work/$cmd.err")"
	else
		echo "db-trust: [pretrans-$cmd] ok: status $st, $(grep -o 'block at 0x[0-9a-f]*[^:]*fails its authentication\|chunk [0-9]* fails its authentication' "$work/$cmd.err" | head -n 1)"
	fi
done
"$pretrans" verify "$work/chunk.tcdb" "$kernel" --sign >"$work/sign-bad.out" 2>&1
st=$?
[ $st = 5 ] && grep -q "is not signed: [1-9][0-9]* rows differ" "$work/sign-bad.out" ||
	fail sign-changed "verify --sign of a changed database: status $st: $(tail -n 2 "$work/sign-bad.out")"
run sign-changed 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$work/chunk.tcdb" \
	--cmdline "console=ttyS0 test=kernel" --stats=json &&
	refused sign-changed chunk.tcdb

cp "$db" "$work/flip.tcdb"
python3 "$tamper" "$work/flip.tcdb" flip-chunk >"$work/flip.blocks"
if boot flip-chunk "$work/flip.tcdb"; then
	refused flip-chunk flip.tcdb
	named=$(grep -o "block at 0x[0-9a-f]*" "$work/flip-chunk/stderr" | head -n 1 | cut -d' ' -f3)
	grep -qw -- "$named" "$work/flip.blocks" ||
		fail flip-chunk "the named block $named is not in the changed chunk"
fi

# --- learned (inline) rows -----------------------------------------------------------
cp "$db" "$work/learn.tcdb"
boot learn "$work/learn.tcdb" --learn
[ "$(json "$work/learn/stderr" learned)" -gt 0 ] || fail learn "nothing was learned"
# The learned rows' blocks are in the boot profile too, which is served
# first: without it, the changed rows themselves are read.
noprofile() { sqlite3 "$1" "DELETE FROM packs WHERE kind = 5"; }
cp "$work/learn.tcdb" "$work/inline.tcdb"
python3 "$tamper" "$work/inline.tcdb" inline-code >/dev/null
noprofile "$work/inline.tcdb"
if boot inline-code "$work/inline.tcdb" --learn; then
	refused inline-code inline.tcdb
	grep -q "no learned blocks written" "$work/inline-code/stderr" ||
		fail inline-code "blocks were learned into a changed database"
fi
cp "$work/learn.tcdb" "$work/pcmap.tcdb"
python3 "$tamper" "$work/pcmap.tcdb" flip-pcmap >/dev/null
noprofile "$work/pcmap.tcdb"
boot flip-pcmap "$work/pcmap.tcdb" && refused flip-pcmap pcmap.tcdb

[ "$(sqlite3 "$work/learn.tcdb" "SELECT n_items FROM packs WHERE kind = 5")" -gt 0 ] ||
	fail learn "no boot profile written"
cp "$work/learn.tcdb" "$work/profile.tcdb"
python3 "$tamper" "$work/profile.tcdb" flip-profile >/dev/null
if boot flip-profile "$work/profile.tcdb"; then
	grep -q "profile.tcdb: the boot-profile pack fails its authentication" "$work/flip-profile/stderr" ||
		fail flip-profile "no authentication line: $(head -c 300 "$work/flip-profile/stderr")"
	[ "$(json "$work/flip-profile/stderr" from_db)" = 0 ] ||
		fail flip-profile "blocks came from a database whose profile was changed"
fi

# --- user templates (docs/user-mode.md "... across boots") ------------------------
# A --learn boot with user programs translated stores their templates (kind
# 8) and fingerprint index (kind 9); one bit of either: refused in one line
# naming the pack, no user block from the database, the programs still pass.
uboot() { # NAME DB [btvm-args]
	local name=$1 db=$2
	shift 2
	run "$name" 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$db" --user=translated \
		--cmdline "console=ttyS0 test=01-hello,03-exec" --stats=json "$@" || return 1
	grep -q '^not ok' "$work/$name/console.raw" && fail "$name" "a test failed"
	return 0
}
cp "$db" "$work/user.tcdb"
uboot ulearn "$work/user.tcdb" --learn
[ "$(json "$work/ulearn/stderr" templates_stored)" -gt 0 ] 2>/dev/null ||
	fail ulearn "no user templates stored"
# the control: the same database unchanged serves user blocks
uboot uwarm "$work/user.tcdb" &&
	{ [ "$(json "$work/uwarm/stderr" blocks_from_db)" -gt 0 ] 2>/dev/null ||
		fail uwarm "no user block from the unchanged database"; }
for k in 8 9; do
	name=$([ $k = 8 ] && echo flip-user-pack || echo flip-user-index)
	what=$([ $k = 8 ] && echo "user-template" || echo "user fingerprint-index")
	cp "$work/user.tcdb" "$work/u$k.tcdb"
	python3 "$tamper" "$work/u$k.tcdb" flip-pack $k >/dev/null || fail "$name" "no pack $k"
	if uboot "$name" "$work/u$k.tcdb"; then
		n=$(grep -c "u$k.tcdb: the $what pack fails its authentication" "$work/$name/stderr")
		[ "$n" = 1 ] || fail "$name" "$n authentication lines: $(head -c 300 "$work/$name/stderr")"
		[ "$(json "$work/$name/stderr" blocks_from_db)" = 0 ] ||
			fail "$name" "user blocks came from a changed pack"
		echo "db-trust: [$name] refused: $(grep -o "the $what pack fails its authentication" "$work/$name/stderr")"
	fi
done

# With the key, anything can be signed: the key is the whole trust, and
# --verify-db still compares a signed row with a run-time translation.
cp "$work/learn.tcdb" "$work/resigned.tcdb"
python3 - "$work/resigned.tcdb" <<'PY'
import sqlite3, struct, sys
c = sqlite3.connect(sys.argv[1])
for start, ex in c.execute("SELECT guest_start, exits FROM blocks WHERE origin = 1 AND length(exits) >= 20").fetchall():
    ex = bytearray(ex)
    struct.pack_into("<Q", ex, 12, struct.unpack_from("<Q", ex, 12)[0] ^ 0x10)
    c.execute("UPDATE blocks SET exits = ? WHERE guest_start = ?", (bytes(ex), start))
c.commit()
PY
python3 "$tamper" "$work/resigned.tcdb" resign-rows "$key" >/dev/null
noprofile "$work/resigned.tcdb"
if boot resigned "$work/resigned.tcdb" --verify-db; then
	grep -q "fails its authentication" "$work/resigned/stderr" &&
		fail resigned "rows signed with the key were refused"
	grep -q "differs from a run-time translation" "$work/resigned/stderr" ||
		fail resigned "--verify-db accepted a block whose exit differs"
fi

# --- another key ---------------------------------------------------------------------
XDG_CONFIG_HOME=$work/other-config "$pretrans" build "$kernel" -o "$work/other.tcdb" \
	>"$work/other-build.log" 2>&1 || fail other-key "pretrans build with another key failed"
cmp -s "$work/other-config/btkern/db.key" "$key" && fail other-key "the two keys are the same"
if run other-key 2 --kernel "$kernel" --initrd "$initrd" --tcdb "$work/other.tcdb" \
	--cmdline "console=ttyS0 test=kernel"; then
	grep -q "other.tcdb is not signed with your key.*pretrans verify .*other.tcdb IMAGE --sign" \
		"$work/other-key/stderr" || fail other-key "no how-to-trust message: $(head -c 400 "$work/other-key/stderr")"
fi
"$pretrans" stats "$work/other.tcdb" >/dev/null 2>&1 && fail other-key "pretrans stats accepted it"
if "$pretrans" verify "$work/other.tcdb" "$kernel" --sign >"$work/sign.out" 2>&1; then
	echo "db-trust: [sign] $(tail -n 1 "$work/sign.out")"
	boot other-key-signed "$work/other.tcdb" &&
		{ [ "$(json "$work/other-key-signed/stderr" from_db)" -gt 0 ] ||
			fail other-key-signed "no block came from the signed database"; }
else
	fail sign "pretrans verify --sign failed: $(tail -n 3 "$work/sign.out")"
fi

# --- file and key permissions ------------------------------------------------------
cp "$db" "$work/writable.tcdb"
chmod g+w "$work/writable.tcdb"
run writable 2 --kernel "$kernel" --tcdb "$work/writable.tcdb" &&
	{ grep -q "writable.tcdb is writable by other users.*chmod go-w" "$work/writable/stderr" ||
		fail writable "no chmod message: $(head -c 300 "$work/writable/stderr")"; }
[ "$(stat -c %a "$db")" = 644 ] || [ "$(stat -c %a "$db")" = 600 ] ||
	fail writable "pretrans build made mode $(stat -c %a "$db")"

mkdir -p "$work/bad-config/btkern"
cp "$key" "$work/bad-config/btkern/db.key"
chmod 644 "$work/bad-config/btkern/db.key"
XDG_CONFIG_HOME=$work/bad-config run bad-key 2 --kernel "$kernel" --tcdb "$db" &&
	{ grep -q "db.key: the database key must be yours and private.*chmod 600" "$work/bad-key/stderr" ||
		fail bad-key "no message: $(head -c 300 "$work/bad-key/stderr")"; }

XDG_CONFIG_HOME=$work/fresh "$pretrans" build "$kernel" -o "$work/fresh.tcdb" >/dev/null 2>&1 ||
	fail new-key "pretrans build with a fresh key directory failed"
k=$work/fresh/btkern/db.key
if [ "$(stat -c '%a %s' "$k" 2>/dev/null)" != "600 32" ] ||
	[ "$(stat -c %a "$work/fresh/btkern")" != 700 ]; then
	fail new-key "key $(stat -c '%a %s' "$k" 2>&1), directory $(stat -c %a "$work/fresh/btkern" 2>&1)"
else
	echo "db-trust: [new-key] ok: 32 bytes, mode 600, directory 700"
fi

echo "db-trust: $failures failure(s)"
[ $failures = 0 ]
