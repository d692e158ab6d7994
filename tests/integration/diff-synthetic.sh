#!/usr/bin/env bash
# check-diff: `pretrans diff` (the ptdiff program) on the synthetic kernel
# pair of guests/diffpair, end to end through the command line:
#   - text output: exact classification for the source change, nothing real
#     for the pure layout shift, while a naive `objdump -d | diff` (run for
#     real here) flags every function of the shift;
#   - --json validated against pretrans/diff/diff-schema.json (a draft-07
#     subset validator below, no extra package), counts cross-checked;
#   - --html parsed with python's html.parser: balanced tags, its embedded
#     data with every function once (as in --json), the chart, a diff per
#     changed/renamed function, nothing fetched from the network (the page
#     in a browser: tests/integration/diff-html-browser.sh);
#   - relocatable modules (ld -r of the same objects);
#   - databases written by `pretrans build`, and one whose image changed;
#   - bad input: another architecture, no symbols, identical inputs, usage.
#
#   tests/integration/diff-synthetic.sh BUILD_DIR
set -euo pipefail

build=${1:-build}
ptdiff=$build/bin/ptdiff
dp=$build/guests/diffpair
tmp=$(mktemp -d /tmp/diff-synthetic.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# never the user's database key (make check sets one under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$tmp/config}
fails=0

ok() { echo "ok   - $*"; }
bad() {
	echo "FAIL - $*"
	fails=$((fails + 1))
}
# the exit status of a diff: 0 same code, 1 the builds differ (docs/diff.md);
# the verdict goes to fd 3 (the script's stdout), past the caller's redirections
exec 3>&1
status() { # WANT DESCRIPTION COMMAND...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" || rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$what: exit $rc" >&3; else bad "$what: exit $rc, expected $want" >&3; fi
}
expect_line() { # FILE REGEX DESCRIPTION
	if grep -Eq -- "$2" "$1"; then ok "$3"; else bad "$3 (no line matching /$2/ in $1)"; fi
}

# --- naive objdump | diff: functions whose disassembly text differs ------
naive_count() {
	python3 - "$1" "$2" <<'EOF'
import subprocess, sys, re
def funcs(path):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                         capture_output=True, text=True).stdout
    cur, res = None, {}
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = m.group(1)
            res.setdefault(cur, [])
        elif cur and line.strip():
            res[cur].append(line)
    return res
a, b = funcs(sys.argv[1]), funcs(sys.argv[2])
print(sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k)))
EOF
}

# --- 1. source change ------------------------------------------------------
status 1 "change: the builds differ" "$ptdiff" "$dp/base.elf" "$dp/change.elf" >"$tmp/change.txt" 2>"$tmp/change.err"
expect_line "$tmp/change.txt" "identical 8, moved 0, changed 1, renamed 1, added 1, removed 1" \
	"change: counts per class"
expect_line "$tmp/change.txt" "^  checksum +size 51 -> 53" "change: checksum changed"
expect_line "$tmp/change.txt" "^  util_name +-> util_renamed" "change: util_name renamed"
expect_line "$tmp/change.txt" "^  new_func " "change: new_func added"
expect_line "$tmp/change.txt" "^  old_func " "change: old_func removed"
expect_line "$tmp/change.txt" "^diff --pretrans a/checksum b/checksum$" "change: git-style diff header of checksum"
expect_line "$tmp/change.txt" "^--- a/checksum	0x[0-9a-f]+, 51 bytes$" "change: old side with address and size"
expect_line "$tmp/change.txt" "^\+\+\+ b/checksum	0x[0-9a-f]+, 53 bytes$" "change: new side with address and size"
expect_line "$tmp/change.txt" "^@@ -checksum\+0x[0-9a-f]+,[0-9]+ \+checksum\+0x[0-9a-f]+,[0-9]+ @@$" \
	"change: unified hunk header with symbol+offset"
expect_line "$tmp/change.txt" "^\+ +1f:  lea edx, \[rax\+rdx\*1\+0x7\]$" "change: the +7 shows as added at its offset"
expect_line "$tmp/change.txt" "^- +8:  xor eax, eax$" "change: a removed line at its offset"
expect_line "$tmp/change.txt" "^diff --pretrans a/checksum.xlat b/checksum.xlat$" "change: translation diff follows"
expect_line "$tmp/change.txt" "^@@ -[0-9]+,[0-9]+ \+[0-9]+,[0-9]+ @@ block self\+0x" \
	"change: translation hunks name their block"
expect_line "$tmp/change.txt" "^\+  lea edx, \[rax\+rdx\*1\+0x7\]$" "change: the +7 shows in the translation"
expect_line "$tmp/change.txt" "^   cmp word ptr \[gs:vcpu\.irq\], 0x101$" "change: translation names vCPU fields"
# every line of the diff section is a diff line (a patch reader can parse it)
if sed -n '/^diff --pretrans/,$p' "$tmp/change.txt" | grep -Evq '^(diff --pretrans |--- a/|\+\+\+ b/|@@ |[-+ ])'; then
	bad "change: a line of the diff section is no unified-diff line"
else ok "change: the diff section is unified-diff lines only"; fi
if grep -q $'\033' "$tmp/change.txt"; then bad "change: colour codes in a file"; else ok "change: no colour when stdout is a file"; fi

# --- 2. pure layout shift ---------------------------------------------------
status 0 "shift: only moved functions, the same code" "$ptdiff" --all "$dp/base.elf" "$dp/shift.elf" >"$tmp/shift.txt" 2>/dev/null
expect_line "$tmp/shift.txt" "changed 0, renamed 0, added 0, removed 0" "shift: nothing really changed"
expect_line "$tmp/shift.txt" "really changed: 0 functions; a naive .* would flag 11" \
	"shift: engine's naive count is every function"
n_shift=$(naive_count "$dp/base.elf" "$dp/shift.elf")
n_change=$(naive_count "$dp/base.elf" "$dp/change.elf")
echo "     real objdump -d | diff flags: shift $n_shift functions, change $n_change functions"
if [ "$n_shift" -eq 11 ]; then ok "shift: objdump|diff flags all 11 functions"; else
	bad "shift: objdump|diff flags $n_shift, expected 11"; fi
if [ "$n_shift" -gt "$n_change" ]; then ok "shift: naive diff larger for the shift than for the change"; else
	bad "naive: shift $n_shift <= change $n_change"; fi

# --- 3. JSON ----------------------------------------------------------------
"$ptdiff" --json "$dp/base.elf" "$dp/change.elf" >"$tmp/change.json" 2>/dev/null || [ $? -eq 1 ]
"$ptdiff" --json "$dp/base.elf" "$dp/shift.elf" >"$tmp/shift.json" 2>/dev/null
for j in change shift; do
	if python3 - pretrans/diff/diff-schema.json "$tmp/$j.json" "$j" <<'EOF'; then ok "json ($j): valid against diff-schema.json, counts consistent"; else bad "json ($j)"; fi
import json, re, sys
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
def check(v, s, path):
    if "$ref" in s:
        s = schema["definitions"][s["$ref"].split("/")[-1]]
    if "oneOf" in s:
        good = [x for x in s["oneOf"] if not errors(v, x, path)]
        if len(good) != 1:
            raise ValueError(f"{path}: matches {len(good)} of oneOf")
        return
    t = s.get("type")
    if t == "integer":
        if not (isinstance(v, int) and not isinstance(v, bool)):
            raise ValueError(f"{path}: not an integer")
    elif t and not isinstance(v, TYPES[t]):
        raise ValueError(f"{path}: not {t}")
    if "enum" in s and v not in s["enum"]:
        raise ValueError(f"{path}: {v!r} not in {s['enum']}")
    if "pattern" in s and not re.search(s["pattern"], v):
        raise ValueError(f"{path}: {v!r} does not match {s['pattern']}")
    if isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v:
                raise ValueError(f"{path}: missing {r}")
        for k, sub in s.get("properties", {}).items():
            if k in v:
                check(v[k], sub, f"{path}.{k}")
    if isinstance(v, list):
        if len(v) < s.get("minItems", 0) or len(v) > s.get("maxItems", 1 << 62):
            raise ValueError(f"{path}: bad length {len(v)}")
        it = s.get("items")
        for i, x in enumerate(v):
            if isinstance(it, list):
                check(x, it[i], f"{path}[{i}]")
            elif it:
                check(x, it, f"{path}[{i}]")
def errors(v, s, path):
    try:
        check(v, s, path)
        return None
    except ValueError as e:
        return str(e)
err = errors(doc, schema, "$")
if err:
    sys.exit("schema: " + err)
# consistency: summary counts = classes of the function list
cls = {}
for f in doc["functions"]:
    cls[f["class"]] = cls.get(f["class"], 0) + 1
    if f["class"] == "added" and (f["old"] is not None or f["new"] is None):
        sys.exit("added entry with an old side")
    if f["reusable"] != (f["class"] in ("identical", "moved", "renamed")):
        sys.exit("reusable flag inconsistent for " + f["key"])
for c in ("identical", "moved", "changed", "renamed", "added", "removed"):
    if doc["summary"][c] != cls.get(c, 0):
        sys.exit(f"summary {c} {doc['summary'][c]} != {cls.get(c, 0)}")
if doc["summary"]["total"] != len(doc["functions"]):
    sys.exit("total mismatch")
if sys.argv[3] == "change":
    want = {"checksum": "changed", "util_renamed": "renamed", "new_func": "added",
            "old_func": "removed", "helper@diffpair_a.c": "identical"}
    got = {f["key"]: f["class"] for f in doc["functions"]}
    for k, v in want.items():
        if got.get(k) != v:
            sys.exit(f"{k}: {got.get(k)} != {v}")
    ck = [f for f in doc["functions"] if f["key"] == "checksum"][0]
    if not ck.get("diff") or not any(op == "+" for op, _ in ck["diff"]):
        sys.exit("checksum has no instruction diff")
    if not doc["translations_compared"] or not any(op == "+" for op, _ in ck["xlat_diff"]):
        sys.exit("checksum has no translation diff")
EOF
done
if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["naive_flagged"])' "$tmp/shift.json")" = "$n_shift" ]; then
	ok "json: naive_flagged equals the real objdump|diff count ($n_shift)"
else
	bad "json: naive_flagged differs from objdump|diff ($n_shift)"
fi

# --- 4. HTML ----------------------------------------------------------------
"$ptdiff" --html "$tmp/change.html" "$dp/base.elf" "$dp/change.elf" >/dev/null 2>&1 || [ $? -eq 1 ]
if python3 - "$tmp/change.html" "$tmp/change.json" <<'EOF'; then ok "html: parses, balanced, every function in the data once, chart, a diff for every changed/renamed one"; else bad "html structure"; fi
import json, sys
from html.parser import HTMLParser
VOID = {"meta", "input", "br", "img", "hr", "link", "rect", "path", "line", "col"}
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rects, self.ext, self.data, self.in_data = [], 0, [], [], False
        self.scripts = 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if k in a and a[k] and not a[k].startswith("#"):
                self.ext.append(a[k])
        if tag == "rect":
            self.rects += 1
        if tag == "script":
            self.scripts += 1
            self.in_data = a.get("id") == "data" and a.get("type") == "application/json"
        if tag not in VOID:
            self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        if tag == "rect":
            self.rects += 1
    def handle_data(self, d):
        if self.in_data:
            self.data.append(d)
    def handle_endtag(self, tag):
        self.in_data = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            sys.exit(f"unbalanced </{tag}>, open: {self.stack[-3:]}")
        self.stack.pop()
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
p.close()
if p.stack:
    sys.exit(f"unclosed tags {p.stack}")
if p.scripts != 2:
    sys.exit(f"{p.scripts} script elements, expected the data and the script")
data = json.loads("".join(p.data))
doc = json.load(open(sys.argv[2]))
keys = [f["key"] for f in doc["functions"]]
if data["k"] != keys:
    sys.exit(f"data keys {data['k']} != functions {keys}")
cls = [data["cls"][c] for c in data["c"]]
if cls != [f["class"] for f in doc["functions"]]:
    sys.exit("classes in the data differ from the JSON report")
if p.rects < 6:
    sys.exit("no bar chart")
want = [i for i, c in enumerate(cls) if c in ("changed", "renamed")]
if [d[0] for d in data["d"]] != want:
    sys.exit(f"diffs for {[d[0] for d in data['d']]}, expected {want}")
if p.ext:
    sys.exit(f"external resources: {p.ext}")
EOF

# --- 5. relocatable modules (ET_REL, relocations masked) ---------------------
"$ptdiff" --no-listings "$dp/base.ko" "$dp/change.ko" >"$tmp/ko.txt" 2>/dev/null || [ $? -eq 1 ]
expect_line "$tmp/ko.txt" "changed 1, renamed 1, added 1, removed 1" ".ko pair: same classification as the images"
"$ptdiff" --no-listings "$dp/base.ko" "$dp/shift.ko" >"$tmp/koshift.txt" 2>/dev/null
expect_line "$tmp/koshift.txt" "really changed: 0 functions; a naive .* would flag 11" ".ko layout shift: nothing changed"

# -- FUNCTION normalises only the named functions (and one-sided ones): each
# function's verdict is the one of the whole diff
if python3 - "$ptdiff" "$dp/base.elf" "$dp/change.elf" <<'EOF'; then ok "-- FUNCTION: every function's verdict equals the full diff's"; else bad "-- FUNCTION verdicts"; fi
import json, subprocess, sys
ptdiff, a, b = sys.argv[1:4]
full = json.loads(subprocess.run([ptdiff, "--json", a, b], capture_output=True, text=True).stdout)
for f in full["functions"]:
    r = subprocess.run([ptdiff, "--json", a, b, "--", f["key"]], capture_output=True, text=True)
    got = [(g["key"], g["class"]) for g in json.loads(r.stdout)["functions"]]
    if got != [(f["key"], f["class"])]:
        sys.exit(f"{f['key']}: {got}, the full diff says {f['class']}")
EOF

# --- 5b. module trees: module by module, compressed modules paired ---------
mt=$tmp/trees
mkdir -p "$mt/a/m" "$mt/b/m"
cp "$dp/base.ko" "$mt/a/m/x.ko"
cp "$dp/base.ko" "$mt/a/m/y.ko"
cp "$dp/base.ko" "$mt/a/gone.ko"
cp "$dp/base.ko" "$mt/a/z.ko"
cp "$dp/change.ko" "$mt/b/m/x.ko"
xz -c "$dp/shift.ko" >"$mt/b/m/y.ko.xz"
zstd -q -c "$dp/base.ko" >"$mt/b/z.ko.zst"
cp "$dp/base.ko" "$mt/b/new.ko"
status 1 "module trees: some modules differ" "$ptdiff" "$mt/a" "$mt/b" >"$tmp/trees.txt" 2>&1
expect_line "$tmp/trees.txt" "^modules: 1 added, 1 removed, 1 changed, 1 same code \(moved functions only\), 1 identical, 0 unreadable$" "module trees: summary (a .ko.xz pairs with its .ko, a .ko.zst too)"
expect_line "$tmp/trees.txt" "^changed +m/x.ko: functions 1 changed, 1 renamed, 1 added, 1 removed, 0 moved, 8 identical$" "module trees: the changed module's function counts"
expect_line "$tmp/trees.txt" "^added +new.ko$" "module trees: an added module"
expect_line "$tmp/trees.txt" "^removed +gone.ko$" "module trees: a removed module"
expect_line "$tmp/trees.txt" "^functions of the compared modules: 1 changed, 1 renamed, 1 added, 1 removed, 0 moved, 19 identical$" "module trees: function totals over the compared modules"
if awk '/^changed +m\/x.ko:/{on=1; next} /^[a-z]/{on=0} on' "$tmp/trees.txt" >"$tmp/trees-x.txt" &&
	[ "$(cat "$tmp/trees-x.txt")" = "$(printf '%s\n' \
		'    changed   checksum  size 51 -> 53' \
		'    renamed   util_name -> util_renamed  size 53' \
		'    added     new_func  size 10' \
		'    removed   old_func  size 8')" ]; then
	ok "module trees: the changed module's really changed functions, by class"
else
	bad "module trees: per-module function list: $(cat "$tmp/trees-x.txt")"
fi
if grep -q "m/y.ko\|z.ko" "$tmp/trees.txt"; then bad "module trees: same-code and identical modules listed without --all"; else ok "module trees: same-code and identical modules only with --all"; fi
"$ptdiff" --json "$mt/a" "$mt/b" >"$tmp/trees.json" 2>/dev/null || [ $? -eq 1 ]
if python3 - "$tmp/trees.json" <<'EOF'; then ok "module trees: JSON with its schema, one entry per module"; else bad "module trees: JSON"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "btkern-diff-modules/1", d["schema"]
got = {m["module"]: m["class"] for m in d["modules"]}
want = {"gone.ko": "removed", "m/x.ko": "changed", "m/y.ko": "same-code", "new.ko": "added", "z.ko": "identical"}
assert got == want, got
assert d["summary"]["changed"] == 1 and d["summary"]["error"] == 0, d["summary"]
x = [m for m in d["modules"] if m["module"] == "m/x.ko"][0]
got = [(c["class"], c["old"], c["new"]) for c in x["changes"]]
assert got == [("changed", "checksum", "checksum"), ("renamed", "util_name", "util_renamed"),
               ("added", None, "new_func"), ("removed", "old_func", None)], got
y = [m for m in d["modules"] if m["module"] == "m/y.ko"][0]
assert y["changes"] == [] and y["functions"]["identical"] == 11, y
EOF
"$ptdiff" --all --json "$mt/a" "$mt/b" >"$tmp/trees-all.json" 2>/dev/null || [ $? -eq 1 ]
if python3 - "$tmp/trees-all.json" <<'EOF'; then ok "module trees: --all lists every function of a compared module"; else bad "module trees: --all JSON"; fi
import json, sys
d = json.load(open(sys.argv[1]))
for m in d["modules"]:
    if "functions" in m:
        assert len(m["changes"]) == sum(m["functions"].values()), m
        assert [c["class"] for c in m["changes"]][-1] in ("moved", "identical"), m
EOF
"$ptdiff" --html "$tmp/trees.html" "$mt/a" "$mt/b" >"$tmp/trees-html.txt" 2>/dev/null || [ $? -eq 1 ]
if [ ! -s "$tmp/trees-html.txt" ] && python3 - "$tmp/trees.html" <<'EOF'; then ok "module trees: --html page (balanced, self-contained, every listed module and function)"; else bad "module trees: --html"; fi
import sys
from html.parser import HTMLParser
VOID = {"meta", "br", "img", "link", "input", "hr"}
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.text, self.fetch = [], [], []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith("#"):
                self.fetch.append(v)
        if tag not in VOID:
            self.stack.append(tag)
    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, (tag, self.stack)
    def handle_data(self, d):
        self.text.append(d)
p = P()
p.feed(open(sys.argv[1]).read())
assert not p.stack and not p.fetch, (p.stack, p.fetch)
t = " ".join(p.text)
for w in ("m/x.ko", "new.ko", "gone.ko", "checksum", "util_renamed", "new_func", "old_func"):
    assert w in t, w
assert "m/y.ko" not in t and "z.ko" not in t, "same-code/identical listed without --all"
EOF
"$ptdiff" --json="$tmp/trees2.json" "$mt/a" "$mt/b" >"$tmp/trees2.txt" 2>/dev/null || [ $? -eq 1 ]
if [ -s "$tmp/trees2.json" ] && [ ! -s "$tmp/trees2.txt" ]; then ok "module trees: --json=FILE writes nothing on stdout"; else bad "module trees: --json=FILE and stdout"; fi
"$ptdiff" --json="$tmp/trees3.json" --text "$mt/a" "$mt/b" >"$tmp/trees3.txt" 2>/dev/null || [ $? -eq 1 ]
expect_line "$tmp/trees3.txt" "^modules: 1 added" "module trees: --text with --json=FILE prints the text report too"
status 0 "module trees: a tree against itself" "$ptdiff" "$mt/a" "$mt/a" >/dev/null 2>&1
head -c 300 "$dp/change.ko" >"$mt/b/m/x.ko"
status 2 "module trees: a truncated module" "$ptdiff" "$mt/a" "$mt/b" >"$tmp/trees-bad.txt" 2>&1
expect_line "$tmp/trees-bad.txt" "m/x.ko: truncated ELF" "module trees: the unreadable module is named"
expect_line "$tmp/trees-bad.txt" "^added +new.ko$" "module trees: the other modules are still compared"
status 2 "module trees: a tree and a file" "$ptdiff" "$mt/a" "$dp/base.ko" >/dev/null 2>&1
cp "$dp/change.ko" "$mt/b/m/x.ko"
cp "$dp/change.elf" "$mt/b/new.ko"
cp "$dp/base.elf" "$mt/a/gone.ko"
cp "$dp/change.elf" "$mt/b/gone.ko"
status 2 "module trees: a kernel image named .ko" "$ptdiff" "$mt/a" "$mt/b" >"$tmp/trees-kind.txt" 2>&1
expect_line "$tmp/trees-kind.txt" "gone.ko and .*/b/gone.ko are linked images, not modules" "module trees: two kernel images named .ko: an error naming them"
if [ "$(grep -c "error:" "$tmp/trees-kind.txt")" = 1 ] && grep -Eq "^error +gone.ko$" "$tmp/trees-kind.txt" &&
	grep -Eq "^changed +m/x.ko:" "$tmp/trees-kind.txt"; then
	ok "module trees: one error line, the module marked, the others still compared"
else
	bad "module trees: a kernel image named .ko: $(cat "$tmp/trees-kind.txt")"
fi

# --- 5c. the test guest's module (guests/kmod-test) and gcc-built variants:
# a lib/modules/<release> tree against another's kernel/ subtree ----------
if [ -n "${TESTMOD:-}" ] && [ -n "${KMOD_CFLAGS:-}" ]; then
	km=$tmp/kmod
	mkdir -p "$km/src" "$km/old/kernel/extra" "$km/new/kernel/extra"
	# changed: kmod_init checks another value; padded: a function added before it
	sed 's/testmod_data_var != 49/testmod_data_var != 50/' guests/kmod-test/testmod.c >"$km/src/changed.c"
	sed 's/^int kmod_init(void)$/int testmod_pad(int x);\nint testmod_pad(int x)\n{\n\treturn 3 * x + 1;\n}\n\n&/' \
		guests/kmod-test/testmod.c >"$km/src/padded.c"
	for v in changed padded; do
		# shellcheck disable=SC2086 # KMOD_CFLAGS is a list of flags
		${CC:-cc} $KMOD_CFLAGS -o "$km/src/$v.ko" "$km/src/$v.c"
	done
	cp "$TESTMOD" "$km/old/kernel/extra/testmod.ko"
	cp "$TESTMOD" "$km/old/kernel/extra/padded.ko"
	cp "$TESTMOD" "$km/old/kernel/extra/same.ko"
	xz -c "$km/src/changed.ko" >"$km/new/kernel/extra/testmod.ko.xz"
	cp "$km/src/padded.ko" "$km/new/kernel/extra/padded.ko"
	cp "$TESTMOD" "$km/new/kernel/extra/same.ko"
	status 1 "testmod: a tree against another's kernel/ subtree" "$ptdiff" "$km/old" "$km/new/kernel" >"$tmp/km.txt" 2>&1
	expect_line "$tmp/km.txt" "^modules: 0 added, 0 removed, 2 changed, 0 same code \(moved functions only\), 1 identical, 0 unreadable$" "testmod: modules paired across kernel/ and .xz"
	expect_line "$tmp/km.txt" "^changed +extra/testmod.ko: functions 1 changed, 0 renamed, 0 added, 0 removed, 0 moved, 0 identical$" "testmod: the changed module"
	expect_line "$tmp/km.txt" "^    changed +kmod_init  size [0-9]+" "testmod: kmod_init changed"
	expect_line "$tmp/km.txt" "^changed +extra/padded.ko: functions 0 changed, 0 renamed, 1 added, 0 removed, 0 moved, 1 identical$" "testmod: a function added before kmod_init, which stays identical (its relocated fields are masked)"
	expect_line "$tmp/km.txt" "^    added +testmod_pad  size [0-9]+" "testmod: the added function named"
	"$ptdiff" --no-listings "$km/old/kernel/extra/testmod.ko" "$km/new/kernel/extra/testmod.ko.xz" >"$tmp/km2.txt" 2>/dev/null || [ $? -eq 1 ]
	expect_line "$tmp/km2.txt" "changed 1, renamed 0, added 0, removed 0" "testmod: two files, one compressed: the same verdict"
else
	bad "5c: TESTMOD and KMOD_CFLAGS not set (make check-diff sets them)"
fi

# --- 5d. bad input for two files: one line naming the file ---------------
onefail() { # DESCRIPTION REGEX OLD NEW: exit 2 and exactly one stderr line matching
	local rc=0
	"$ptdiff" --no-listings "$3" "$4" >/dev/null 2>"$tmp/one.err" || rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/one.err")" = 1 ] && grep -Eq -- "$2" "$tmp/one.err"; then
		ok "$1"
	else
		bad "$1: rc $rc, $(cat "$tmp/one.err")"
	fi
}
printf 'not an ELF file\n' >"$tmp/text.ko"
head -c 300 "$dp/base.ko" >"$tmp/trunc.ko"
onefail "a non-ELF .ko: one line" "text.ko: not an ELF" "$tmp/text.ko" "$dp/base.ko"
onefail "a truncated .ko: one line" "trunc.ko: truncated ELF" "$dp/base.ko" "$tmp/trunc.ko"
onefail "a kernel against a .ko: one line naming both" "base.elf is a linked image .*/base.ko is a relocatable module" "$dp/base.elf" "$dp/base.ko"
onefail "a .ko against a kernel: one line naming both" "base.ko is a relocatable module .*/change.elf is a linked image" "$dp/base.ko" "$dp/change.elf"

# --- 6. databases: `pretrans build` then `pretrans diff OLD.tcdb NEW` -------
pretrans=$build/bin/pretrans
"$pretrans" build "$dp/base.elf" -o "$tmp/base.tcdb" >/dev/null 2>&1
"$pretrans" diff --no-listings "$tmp/base.tcdb" "$dp/change.elf" >"$tmp/db.txt" 2>/dev/null || [ $? -eq 1 ]
expect_line "$tmp/db.txt" "old: .*/base.tcdb \(image .*/base.elf\)" "database input: image found via the database"
expect_line "$tmp/db.txt" "identical 8, moved 0, changed 1, renamed 1, added 1, removed 1" \
	"database input: same classification as the ELF"
cp "$dp/base.elf" "$tmp/k.elf"
"$pretrans" build "$tmp/k.elf" -o "$tmp/k.tcdb" >/dev/null 2>&1
cp "$dp/change.elf" "$tmp/k.elf"
rc=0
"$pretrans" diff "$tmp/k.tcdb" "$dp/base.elf" >/dev/null 2>"$tmp/stale.err" || rc=$?
if [ $rc -eq 2 ] && grep -q "rebuild the database" "$tmp/stale.err"; then
	ok "database whose image changed: exit 2, says to rebuild"
else
	bad "stale database: rc $rc, $(cat "$tmp/stale.err")"
fi

# --- 7. bad input -----------------------------------------------------------
cp "$dp/base.elf" "$tmp/arm.elf"
printf '\267\000' | dd of="$tmp/arm.elf" bs=1 seek=18 conv=notrunc status=none
rc=0
"$ptdiff" "$dp/base.elf" "$tmp/arm.elf" >/dev/null 2>"$tmp/arm.err" || rc=$?
if [ $rc -eq 2 ] && grep -q "arm.elf" "$tmp/arm.err"; then ok "another architecture: exit 2, names the file"; else
	bad "another architecture: rc $rc, $(cat "$tmp/arm.err")"; fi
objcopy --strip-all "$dp/base.elf" "$tmp/stripped.elf"
rc=0
"$ptdiff" "$dp/base.elf" "$tmp/stripped.elf" >"$tmp/strip.txt" 2>"$tmp/strip.err" || rc=$?
if [ $rc -eq 1 ] && grep -q "has no symbols" "$tmp/strip.err" && grep -q "removed 11" "$tmp/strip.txt"; then
	ok "missing symbols: warning, every function removed"
else
	bad "missing symbols: rc $rc"
fi
status 0 "identical inputs" "$ptdiff" "$dp/change.elf" "$dp/change.elf" >"$tmp/same.txt" 2>"$tmp/same.err"
expect_line "$tmp/same.txt" "identical 11, moved 0, changed 0" "identical inputs: all identical"
expect_line "$tmp/same.txt" "the two images have the same code" "identical inputs: said plainly"
expect_line "$tmp/same.err" "same file content" "identical inputs: noted on stderr"
rc=0
"$ptdiff" "$dp/base.elf" >/dev/null 2>&1 || rc=$?
if [ $rc -eq 2 ]; then ok "usage error: exit 2"; else bad "usage error: rc $rc"; fi
rc=0
"$ptdiff" "$dp/base.elf" "$tmp/none.elf" >/dev/null 2>"$tmp/none.err" || rc=$?
if [ $rc -ne 0 ] && grep -q "none.elf" "$tmp/none.err"; then ok "missing file: fails, names it"; else
	bad "missing file: rc $rc"; fi

# --- 8. restricting, outputs, colour, pager, syntax -------------------------
status 1 "-- checksum: one changed function" "$ptdiff" "$dp/base.elf" "$dp/change.elf" -- checksum >"$tmp/one.txt" 2>/dev/null
expect_line "$tmp/one.txt" "^functions: 1 entries: identical 0, moved 0, changed 1, renamed 0, added 0, removed 0$" \
	"-- checksum: only that function is counted"
if grep -q "util_renamed\|new_func" "$tmp/one.txt"; then bad "-- checksum: other functions listed"; else ok "-- checksum: no other function listed"; fi
status 0 "-- helper@diffpair_a.c: by the key the report prints" "$ptdiff" "$dp/base.elf" "$dp/change.elf" -- helper@diffpair_a.c >/dev/null 2>&1
status 2 "-- no_such_function" "$ptdiff" "$dp/base.elf" "$dp/change.elf" -- no_such_function >/dev/null 2>"$tmp/nosuch.err"
expect_line "$tmp/nosuch.err" "no function 'no_such_function'" "-- no_such_function: named on stderr"
status 2 "a third argument without --" "$ptdiff" "$dp/base.elf" "$dp/change.elf" checksum >/dev/null 2>"$tmp/third.err"
expect_line "$tmp/third.err" "argument 'checksum' after OLD and NEW.*-- FUNCTION" "a third argument: says to use --"
status 1 "--html FILE" "$ptdiff" --html "$tmp/h.html" "$dp/base.elf" "$dp/change.elf" >"$tmp/h.out" 2>/dev/null
if [ -s "$tmp/h.out" ]; then bad "--html FILE: text on stdout"; else ok "--html FILE: nothing on stdout"; fi
status 1 "--json=FILE" "$ptdiff" --json="$tmp/j.json" "$dp/base.elf" "$dp/change.elf" >"$tmp/j.out" 2>/dev/null
if [ ! -s "$tmp/j.out" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/j.json"; then
	ok "--json=FILE: the JSON in FILE, nothing on stdout"; else bad "--json=FILE"; fi
status 1 "--html FILE --text" "$ptdiff" --html "$tmp/h2.html" --text "$dp/base.elf" "$dp/change.elf" >"$tmp/h2.out" 2>/dev/null
expect_line "$tmp/h2.out" "^diff --pretrans a/checksum b/checksum$" "--html FILE --text: the text report on stdout too"
"$ptdiff" --color=always "$dp/base.elf" "$dp/change.elf" -- checksum >"$tmp/color.txt" 2>/dev/null || true
if grep -q $'^\033\\[31m- \\+8:  xor eax, eax\033\\[m$' "$tmp/color.txt" &&
	grep -q $'^\033\\[32m+ \\+1f:  lea edx' "$tmp/color.txt" && grep -q $'^\033\\[36m@@ ' "$tmp/color.txt"; then
	ok "--color=always: removed red, added green, hunks cyan"; else bad "--color=always"; fi
status 2 "--color=sometimes" "$ptdiff" --color=sometimes "$dp/base.elf" "$dp/change.elf" >/dev/null 2>&1
"$ptdiff" -M att "$dp/base.elf" "$dp/change.elf" -- checksum >"$tmp/att.txt" 2>/dev/null || true
expect_line "$tmp/att.txt" "^\+ +1f:  lea 0x7\(%rax,%rdx,1\), %edx$" "-M att: AT&T operands"
expect_line "$tmp/att.txt" "^   cmpw \\\$0x101, %gs:vcpu\.irq$" "-M att: translation in AT&T with vCPU fields"
status 2 "-M bogus" "$ptdiff" -M bogus "$dp/base.elf" "$dp/change.elf" >/dev/null 2>&1
# the pager: only on a terminal (script(1) gives the command one), $PAGER
# with LESS=FRX set for it; --no-pager and PAGER=cat write directly
if command -v script >/dev/null; then
	printf '#!/bin/sh\necho "LESS=$LESS" >"%s"\ncat >"%s"\n' "$tmp/pager.env" "$tmp/paged.txt" >"$tmp/pager.sh"
	chmod +x "$tmp/pager.sh"
	rm -f "$tmp/paged.txt"
	PAGER="$tmp/pager.sh" script -qec "$ptdiff $dp/base.elf $dp/change.elf -- checksum" /dev/null >"$tmp/tty.out" 2>&1 || true
	if grep -q "diff --pretrans a/checksum" "$tmp/paged.txt" 2>/dev/null && grep -qx "LESS=FRX" "$tmp/pager.env"; then
		ok "pager: on a terminal the report goes through \$PAGER with LESS=FRX"; else bad "pager on a terminal"; fi
	if grep -q $'\033\\[31m' "$tmp/paged.txt" 2>/dev/null; then ok "pager: colour on a terminal (auto)"; else bad "no colour on a terminal"; fi
	rm -f "$tmp/paged.txt"
	PAGER="$tmp/pager.sh" script -qec "$ptdiff --no-pager $dp/base.elf $dp/change.elf -- checksum" /dev/null >"$tmp/tty2.out" 2>&1 || true
	if [ ! -e "$tmp/paged.txt" ] && grep -q "diff --pretrans a/checksum" "$tmp/tty2.out"; then
		ok "--no-pager: written to the terminal directly"; else bad "--no-pager"; fi
	NO_COLOR=1 PAGER=cat script -qec "$ptdiff $dp/base.elf $dp/change.elf -- checksum" /dev/null >"$tmp/tty3.out" 2>&1 || true
	if grep -q "diff --pretrans a/checksum" "$tmp/tty3.out" && ! grep -q $'\033\\[3[12]m' "$tmp/tty3.out"; then
		ok "PAGER=cat, NO_COLOR: plain text on the terminal"; else bad "PAGER=cat / NO_COLOR"; fi
else
	echo "skip - pager checks: script(1) (util-linux) missing"
fi

echo "diff-synthetic: $fails failure(s)"
[ $fails -eq 0 ]
