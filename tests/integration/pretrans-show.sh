#!/usr/bin/env bash
# check-pretrans-show: `pretrans show` on small images gcc builds here (two
# static functions of one name in two files, a weak alias, calls between
# them; one image with a build-id, one without), against objdump and
# `pretrans diff`'s keys:
#   - --guest lists the same instructions at the same addresses with the
#     same bytes as `objdump -d`, and names every call/jump target as
#     objdump does (<target>, <fn+0x1f>);
#   - the translated listing names vCPU fields (no raw %gs offsets);
#   - -M intel|att; an ambiguous name lists its candidates (exit 2); each
#     NAME@FILE key `pretrans diff` prints selects one; an alias the
#     database dropped is found through the image's symbol table;
#   - the image path is recorded absolute; a database that recorded it
#     relative (before) is still served from its own directory;
#   - an image that keeps its build-id but changed code is refused (exit 2).
#
#   tests/integration/pretrans-show.sh BUILD_DIR
set -uo pipefail

build=${1:-build}
P=$(realpath "$build/bin/pretrans")
PTDIFF=$(realpath "$build/bin/ptdiff")
W=$(mktemp -d /tmp/pretrans-show.XXXXXX)
trap 'rm -rf "$W"' EXIT
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$W/config}
n=0
fails=0
pass() {
	n=$((n + 1))
	echo "ok $n - $*"
}
fail() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $*"
}
check() { # DESCRIPTION COMMAND...: pass when the command succeeds
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

cat >"$W/a.c" <<'EOF'
__attribute__((noinline)) int target(int x) { return x * 3 + 1; }
__attribute__((noinline, used)) static int dup(int x) { return target(x) + 7; }
__attribute__((noinline)) void *impl_copy(void *d, const void *s, unsigned long n)
{
	char *dd = d;
	const char *ss = s;
	while (n--)
		*dd++ = *ss++;
	return d;
}
extern __typeof(impl_copy) alias_copy __attribute__((weak, alias("impl_copy")));
int use_a(int x) { return dup(x); }
EOF
cat >"$W/b.c" <<'EOF'
int target(int x);
int use_a(int x);
void *alias_copy(void *d, const void *s, unsigned long n);
__attribute__((noinline, used)) static int dup(int x) { return target(x) - 5; }
static char buf[16];
void _start(void)
{
	alias_copy(buf, "hello", 6);
	for (;;)
		dup(use_a(buf[0]));
}
EOF
# three static functions of one name in three files of one basename: keys
# twin@c.c#1..#3 by address
for d in x y z; do
	mkdir -p "$W/$d"
	printf '__attribute__((noinline, used)) static int twin(int x) { return x + %d; }\n' \
		"'$d'" >"$W/$d/c.c"
	printf 'int call_%s(int x) { return twin(x); }\n' "$d" >>"$W/$d/c.c"
done
cflags=(-O1 -fno-pic -no-pie -nostdlib -static -fno-inline -fcf-protection=none)
(cd "$W" && gcc "${cflags[@]}" -Wl,--build-id -o t.elf a.c b.c x/c.c y/c.c z/c.c &&
	gcc "${cflags[@]}" -Wl,--build-id=none -o nobid.elf a.c b.c x/c.c y/c.c z/c.c) || {
	echo "pretrans-show: gcc failed"
	exit 1
}
# built from a relative path, in the image's directory
(cd "$W" && "$P" build t.elf -o t.tcdb 2>/dev/null && "$P" build nobid.elf -o nobid.tcdb 2>/dev/null) ||
	fail "pretrans build"
cd /
rec=$(sqlite3 "$W/t.tcdb" "SELECT path FROM image")
check "build records the image path absolute ($rec)" [ "$rec" = "$W/t.elf" ]

# --- guest listing against objdump ------------------------------------------
# "address:<TAB>bytes" of every line, and the <symbol> of each branch target
cols() { sed -n 's/^ *\([0-9a-f]*\):\t\([0-9a-f ]*[0-9a-f]\) *\t.*/\1 \2/p; s/^ *\([0-9a-f]*\):\t\([0-9a-f ]*[0-9a-f]\) *$/\1 \2/p'; }
targets() { grep -oE '(call|j[a-z]+) +[^<]*<[^>]+>' | sed -E 's/^(call|j[a-z]+) .*(<[^>]+>)/\2/'; }
for fn in target impl_copy _start use_a; do
	"$P" show "$W/t.tcdb" "$fn" --guest -M att >"$W/g.$fn" 2>"$W/err" || fail "show --guest $fn: $(cat "$W/err")"
	objdump -d --disassemble="$fn" "$W/t.elf" | sed -n '/^[0-9a-f]* <.*>:$/,$p' >"$W/o.$fn"
	if [ -s "$W/o.$fn" ] && diff <(cols <"$W/o.$fn") <(cols <"$W/g.$fn") >"$W/d" 2>&1; then
		pass "show --guest $fn: the addresses and bytes of objdump -d ($(cols <"$W/o.$fn" | wc -l) lines)"
	else
		fail "show --guest $fn differs from objdump -d: $(head -5 "$W/d")"
	fi
	if diff <(targets <"$W/o.$fn") <(targets <"$W/g.$fn") >"$W/d"; then
		pass "show --guest $fn: branch targets named as objdump names them ($(targets <"$W/o.$fn" | tr '\n' ' '))"
	else
		fail "show --guest $fn: targets differ from objdump: $(head -5 "$W/d")"
	fi
done
check "-M att: AT&T registers" grep -q '%rdi' "$W/g.impl_copy"
"$P" show "$W/t.tcdb" impl_copy --guest >"$W/intel" 2>/dev/null
check "default syntax intel (as pretrans diff)" grep -q 'mov rax, rdi' "$W/intel"
check "lower-case hex" bash -c "! grep -E '0x[0-9a-f]*[A-F]' '$W/intel'"

# --- translated listing ------------------------------------------------------
"$P" show "$W/t.tcdb" use_a >"$W/full" 2>"$W/err" || fail "show use_a: $(cat "$W/err")"
check "show: blocks, exits and host code" grep -q '^block 40[0-9a-f]* <use_a>: ' "$W/full"
check "show: exits name their targets" grep -Eq '^  exit [0-9]+: .* -> 0x[0-9a-f]+ <dup>' "$W/full"
check "show: vCPU fields named (gs:[vcpu.irq])" grep -q 'gs:\[vcpu\.irq\]' "$W/full"
if grep -E '^ +\+[0-9a-f]{4}  ' "$W/full" | grep -Eq 'gs:\[(0x|r[0-9a-z]+\+0x)'; then
	fail "show: a raw %gs offset in translated code: $(grep -E '^ +\+' "$W/full" | grep -E 'gs:\[(0x|r)' | head -2)"
else
	pass "show: no raw %gs offset in translated code"
fi
"$P" show "$W/t.tcdb" use_a -M att >"$W/full-att" 2>/dev/null
check "show -M att: %gs:vcpu.irq" grep -q '%gs:vcpu\.irq' "$W/full-att"

# --- names -------------------------------------------------------------------
rc=0
"$P" show "$W/t.tcdb" dup >/dev/null 2>"$W/err" || rc=$?
if [ $rc = 2 ] && grep -q "'dup' names 2 functions" "$W/err" && grep -q '^  dup@a.c ' "$W/err" &&
	grep -q '^  dup@b.c ' "$W/err"; then
	pass "ambiguous name: exit 2, both candidates listed"
else
	fail "ambiguous name: exit $rc: $(cat "$W/err")"
fi
# the keys `pretrans diff` prints select one function each
"$PTDIFF" --json "$W/t.elf" "$W/t.elf" >"$W/keys.json" 2>/dev/null
keys=$(python3 -c 'import json,sys; print(" ".join(f["key"] for f in json.load(open(sys.argv[1]))["functions"] if "@" in f["key"]))' "$W/keys.json")
check "pretrans diff prints 5 distinct NAME@FILE[#K] keys ($keys)" \
	[ "$(echo "$keys" | tr ' ' '\n' | sort -u | grep -cE '^(dup@[ab]\.c|twin@c\.c#[123])$')" = 5 ]
for k in $keys; do
	addr=$(python3 -c 'import json,sys; print([f["new"]["addr"] for f in json.load(open(sys.argv[1]))["functions"] if f["key"] == sys.argv[2]][0])' "$W/keys.json" "$k")
	if "$P" show "$W/t.tcdb" "$k" --guest >"$W/k" 2>"$W/err" && head -1 "$W/k" | grep -q "^0*${addr#0x} <${k%%@*}>:"; then
		pass "show $k: the function diff means ($addr)"
	else
		fail "show $k: $(cat "$W/err") $(head -1 "$W/k")"
	fi
done
"$P" show "$W/t.tcdb" 'dup@a.c#1' --guest >/dev/null 2>&1
check "NAME@FILE#K" [ $? = 0 ]
# one of impl_copy / alias_copy is stored; the other is found as its alias
stored=$(sqlite3 "$W/t.tcdb" "SELECT name FROM functions WHERE name IN ('impl_copy','alias_copy')")
other=impl_copy
[ "$stored" = impl_copy ] && other=alias_copy
if "$P" show "$W/t.tcdb" "$other" --guest >"$W/alias" 2>"$W/err" && grep -q "$other is an alias of $stored" "$W/err" &&
	grep -q "<impl_copy>:" "$W/alias"; then # headed as objdump heads it
	pass "alias $other resolved to the stored $stored"
else
	fail "alias $other: $(cat "$W/err")"
fi
rc=0
"$P" show "$W/t.tcdb" no_such_function >/dev/null 2>"$W/err" || rc=$?
check "unknown name: exit 2" [ $rc = 2 ]

# --- the image ----------------------------------------------------------------
# a database that recorded the path relative (as builds did before) and
# is used from another directory: found next to the database
cp "$W/t.tcdb" "$W/old.tcdb"
sqlite3 "$W/old.tcdb" "UPDATE image SET path = 't.elf'"
"$P" verify "$W/old.tcdb" "$W/t.elf" --sign >/dev/null 2>&1 # the row changed: sign it again
if "$P" show "$W/old.tcdb" target --guest >"$W/old" 2>"$W/err" && grep -q '<target>:' "$W/old"; then
	pass "relative image path of an old database, from another directory"
else
	fail "relative image path: $(cat "$W/err")"
fi
# same build-id, one code byte changed: the shown blocks' hashes catch it
cp "$W/t.elf" "$W/t.orig"
off=$(objdump -d --disassemble=target -F "$W/t.elf" | sed -n 's/.*File Offset: 0x\([0-9a-f]*\).*/\1/p' | head -1)
printf '\x90' | dd of="$W/t.elf" bs=1 seek=$((16#$off)) conv=notrunc status=none
rc=0
"$P" show "$W/t.tcdb" target >/dev/null 2>"$W/err" || rc=$?
if [ $rc = 2 ] && grep -q "do not match the bytes of" "$W/err"; then
	pass "same build-id, changed code: exit 2"
else
	fail "changed code under the same build-id: exit $rc: $(cat "$W/err")"
fi
cp "$W/t.orig" "$W/t.elf"
# without a build-id the whole file is hashed: another image is refused
rc=0
"$P" show "$W/nobid.tcdb" target --image "$W/t.elf" >/dev/null 2>"$W/err" || rc=$?
if [ $rc = 2 ] && grep -q "is not the image the database was built from (SHA-256" "$W/err"; then
	pass "no build-id: another image refused by SHA-256"
else
	fail "no build-id: exit $rc: $(cat "$W/err")"
fi
rc=0
"$P" show "$W/t.tcdb" target --image "$W/nobid.elf" >/dev/null 2>"$W/err" || rc=$?
check "build-id recorded, image without one: exit 2" [ $rc = 2 ]
rc=0
"$P" show "$W/t.tcdb" target -M foo >/dev/null 2>"$W/err" || rc=$?
check "-M foo: usage error, exit 2" [ $rc = 2 ]

echo "pretrans-show: $((n - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
