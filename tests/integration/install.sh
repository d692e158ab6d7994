#!/usr/bin/env bash
# make install / make uninstall into a DESTDIR: the three programs, their man
# pages and bash completion land where a Debian tool's would, the installed
# programs run from anywhere (a pre-translated boot of a tiny guest that
# powers off), the man pages render and carry every option of the --help
# text and an EXIT STATUS section, completion completes, and uninstall
# removes every file it installed.
#
#   tests/integration/install.sh BUILD_DIR
set -u
build=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/dest
export XDG_CONFIG_HOME=$work/cfg # never the user's own database key
failures=0
fail() { echo "install: FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "install: ok: $*"; }

if ! make -s --no-print-directory -C "$repo" BUILD="$build" DESTDIR="$dest" PREFIX=/usr install \
	>"$work/log" 2>&1; then
	fail "make install: $(tail -n 5 "$work/log")"
	exit 1
fi
for p in pretrans btvm ptdiff; do
	[ -x "$dest/usr/bin/$p" ] || fail "usr/bin/$p missing or not executable"
	[ -s "$dest/usr/share/man/man1/$p.1" ] || fail "usr/share/man/man1/$p.1 missing"
	[ -e "$dest/usr/share/bash-completion/completions/$p" ] || fail "completion for $p missing"
done
[ "$failures" = 0 ] && ok "programs, man pages and completion installed under DESTDIR/usr"

# the installed programs run from another directory, on their own
cd "$work"
kernel=$build/tests/guests/tiny-poweroff.elf
if "$dest/usr/bin/pretrans" build "$kernel" -o "$work/tiny.tcdb" 2>"$work/err" &&
	"$dest/usr/bin/btvm" run --kernel "$kernel" --tcdb "$work/tiny.tcdb" \
		--timeout 30 --stats=json --stats-file "$work/stats.json" </dev/null >/dev/null 2>>"$work/err"; then
	from_db=$(sed -n 's/.*"from_db":\([0-9]*\).*/\1/p' "$work/stats.json")
	if [ "${from_db:-0}" -gt 0 ]; then
		ok "installed pretrans and btvm: a warm boot that powers off (exit 0), $from_db blocks from the database"
	else
		fail "the installed btvm ran no block from the database: $(cat "$work/stats.json")"
	fi
else
	fail "installed pretrans build / btvm run failed: $(tail -n 3 "$work/err")"
fi
[ "$("$dest/usr/bin/ptdiff" --version)" = "$("$build/bin/ptdiff" --version)" ] ||
	fail "installed ptdiff --version differs from the build's"

# man pages: render, EXIT STATUS, every long option of --help
for p in pretrans btvm ptdiff; do
	page=$dest/usr/share/man/man1/$p.1
	if ! MANWIDTH=100 man -l "$page" >"$work/$p.txt" 2>"$work/$p.err"; then
		fail "man -l $p.1: $(head -n 3 "$work/$p.err")"
		continue
	fi
	grep -q '^NAME' "$work/$p.txt" || fail "$p.1 has no NAME section"
	grep -q "^EXIT STATUS" "$work/$p.txt" || fail "$p.1 has no EXIT STATUS section"
	help=$("$build/bin/$p" --help 2>&1)
	if [ $p = pretrans ]; then
		cmds=$("$build/bin/$p" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' | grep -vx pretrans)
		[ "$(wc -w <<<"$cmds")" -ge 7 ] || fail "pretrans --help lists too few commands: $cmds"
		for c in $cmds; do help+=$("$build/bin/$p" $c --help); done
	fi
	missing=$(grep -o -- '--[a-z][a-z-]*' <<<"$help" | sort -u | while read -r opt; do
		grep -qF -- "$opt" "$work/$p.txt" || echo "$opt"
	done)
	[ -z "$missing" ] || fail "$p.1 lacks options its --help has: $missing"
done
ok "man pages render with NAME, EXIT STATUS and every option of --help"

# completion
got=$(bash -c 'source "$1"; COMP_WORDS=(btvm run --us); COMP_CWORD=2; _btkern_btvm; echo "${COMPREPLY[*]}"' \
	_ "$dest/usr/share/bash-completion/completions/btvm")
[ "$got" = "--user" ] || fail "btvm run --us<TAB> gave '$got', not --user"
got=$(bash -c 'source "$1"; COMP_WORDS=(pretrans st); COMP_CWORD=1; _btkern_pretrans; echo "${COMPREPLY[*]}"' \
	_ "$dest/usr/share/bash-completion/completions/pretrans")
[ "$got" = "stats" ] || fail "pretrans st<TAB> gave '$got', not stats"
ok "bash completion completes commands and options"

make -s --no-print-directory -C "$repo" BUILD="$build" DESTDIR="$dest" PREFIX=/usr uninstall >/dev/null 2>&1
left=$(find "$dest" ! -type d | head -n 5)
[ -z "$left" ] || fail "make uninstall left: $left"
[ -n "$left" ] || ok "make uninstall removes every installed file"
echo "install: $failures failure(s)"
[ "$failures" = 0 ]
