#!/usr/bin/env bash
# Module templates bound at run time (docs/kmod.md, "Binding"): the test
# guest loads lib/modules/testmod.ko from its initrd at an address its own
# loader chooses; with a database built with --modules the module's blocks
# come from the templates (and equal a fresh translation: --verify-db),
# without one they are translated at run time.
#
#   tests/integration/kmod-btvm.sh BUILD_DIR
set -uo pipefail
B=$1
W=$(mktemp -d /tmp/kmod-btvm.XXXXXX)
trap 'rm -rf "$W"' EXIT
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$W/config}
export SOURCE_DATE_EPOCH=1700000000
fails=0
pass() { echo "ok - $1"; }
fail() { fails=$((fails + 1)); echo "not ok - $1"; }

K=$B/guests/kernel.elf
"$B/bin/pretrans" build "$K" -o "$W/plain.tcdb" 2>"$W/err" || fail "build: $(cat "$W/err")"
"$B/bin/pretrans" build "$K" --modules "$B/guests/testmod.ko" -o "$W/mod.tcdb" 2>"$W/err" ||
	fail "build --modules: $(cat "$W/err")"

run() { # NAME DB [ARGS]: boot the kernel tests with the initrd
	local name=$1 db=$2
	shift 2
	timeout --kill-after=5 120 "$B/bin/btvm" run --kernel "$K" --initrd "$B/guests/initrd.cpio" \
		--tcdb "$db" --cmdline "console=ttyS0 test=kernel" --stats=json "$@" \
		</dev/null >"$W/$name.out" 2>"$W/$name.err"
	if grep -q '^ok .* kernel/kmod' "$W/$name.out" && grep -q '^testmod: init' "$W/$name.out"; then
		pass "$name: the guest loaded and ran testmod.ko ($(grep -o '# kmod: lib/modules/testmod.ko at 0x[0-9a-f]*' "$W/$name.out"))"
	else
		fail "$name: the module test did not pass: $(grep -E 'kmod|testmod' "$W/$name.out" | head -3)"
	fi
}
stat() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$W/$1.err"; }

run templates "$W/mod.tcdb" --verify-db
fromdb=$(stat templates kmod_blocks_from_db)
trans=$(stat templates kmod_blocks_translated)
if [ "${fromdb:-0}" -ge 4 ] && [ "${trans:-1}" -eq 0 ]; then
	pass "with --modules: $fromdb module blocks from the templates, $trans translated"
else
	fail "with --modules: kmod_blocks_from_db=$fromdb kmod_blocks_translated=$trans"
fi
# lazily: the fingerprint index at start, the one module's pack on its first match
infl=$(stat templates kmod_packs_inflated)
if [ "${infl:-0}" -eq 1 ]; then
	pass "the module's pack was inflated once, on its first match (kmod_packs_inflated=$infl)"
else
	fail "kmod_packs_inflated=$infl, want 1"
fi
if grep -q "differs from a run-time translation" "$W/templates.err"; then
	fail "--verify-db: an instantiated template differs: $(grep differs "$W/templates.err" | head -2)"
else
	pass "--verify-db: every instantiated template equals a fresh translation ($(stat templates db_verified) verified)"
fi

run plain "$W/plain.tcdb"
fromdb=$(stat plain kmod_blocks_from_db)
trans=$(stat plain kmod_blocks_translated)
if [ "${fromdb:-1}" -eq 0 ] && [ "${trans:-0}" -ge 4 ]; then
	pass "without --modules: $trans module blocks translated at run time, $fromdb from the database"
else
	fail "without --modules: kmod_blocks_from_db=$fromdb kmod_blocks_translated=$trans"
fi

# a changed template byte is refused by the module's tag: nothing is used
cp "$W/mod.tcdb" "$W/bad.tcdb"
sqlite3 "$W/bad.tcdb" "UPDATE modules SET srcversion = 'tampered'"
run tampered "$W/bad.tcdb"
fromdb=$(stat tampered kmod_blocks_from_db)
if [ "${fromdb:-1}" -eq 0 ] && grep -q "fails its authentication" "$W/tampered.err"; then
	pass "a tampered module row is refused by its tag (no template used)"
else
	fail "tampered module row: kmod_blocks_from_db=$fromdb; $(grep -m1 error "$W/tampered.err")"
fi
# a changed fingerprint index is refused by its tag: one line, nothing bound
cp "$W/mod.tcdb" "$W/badidx.tcdb"
sqlite3 "$W/badidx.tcdb" "UPDATE packs SET n_items = n_items + 1 WHERE kind = 4"
run tampered-index "$W/badidx.tcdb"
fromdb=$(stat tampered-index kmod_blocks_from_db)
nl=$(grep -c "module fingerprint-index pack fails its authentication" "$W/tampered-index.err")
if [ "${fromdb:-1}" -eq 0 ] && [ "$nl" -eq 1 ]; then
	pass "a tampered fingerprint index is refused by its tag, in one line (no template used)"
else
	fail "tampered index: kmod_blocks_from_db=$fromdb, $nl lines: $(grep -m1 error "$W/tampered-index.err")"
fi
echo "kmod-btvm: $fails failed"
[ "$fails" -eq 0 ]
