#!/usr/bin/env bash
# The README's commands run as written: every ```sh block (in order, in one
# shell with `set -e`, so a failing command fails the test) from a scratch
# directory where build/ and tests/ point at the tree's, with its own
# database key.  Blocks tagged ```sh setup (make demo, make check: what runs
# this) are skipped; blocks tagged ```sh TAG run only when TAG is given
# (tests/bench/readme-debian.sh runs the downloading "debian" block).
#
#   tests/integration/readme.sh BUILD_DIR [TAG]
set -u
build=$(cd "${1:?usage: readme.sh BUILD_DIR [TAG]}" && pwd)
tag=${2:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/readme-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the blocks whose info string is exactly "sh" (or "sh TAG")
awk -v want="$tag" '
	/^```/ && inblk { inblk = 0; n++; next }
	/^```sh/ && !inblk {
		info = substr($0, 6); sub(/^[ \t]+/, "", info)
		inblk = 1; keep = (info == want)
		if (keep) printf "echo \"readme: --- block %d\"\n", n + 1
		next
	}
	inblk && keep { print }
' "$repo/README.md" >"$work/script.sh"
blocks=$(grep -c '^echo "readme: --- block' "$work/script.sh")
if [ "$blocks" -lt 1 ]; then
	echo "readme: FAIL: no \`\`\`sh${tag:+ $tag} block in README.md"
	exit 1
fi
mkdir "$work/cwd"
ln -s "$build" "$work/cwd/build"
ln -s "$repo/tests" "$work/cwd/tests"
echo "readme: running $blocks block(s) of README.md${tag:+ tagged $tag} in $work/cwd"
start=$SECONDS
(cd "$work/cwd" && XDG_CONFIG_HOME=$work/cfg bash -e -x "$work/script.sh" </dev/null) \
	>"$work/out" 2>&1
st=$?
if [ "$st" != 0 ]; then
	tail -n 30 "$work/out"
	echo "readme: FAIL: a README command failed (status $st; the last lines above)"
	exit 1
fi
grep -c '^+ build/bin/' "$work/out" | sed 's/^/readme: ok: commands of the tools run: /'
echo "readme: ok: every command of the README ran as written in $((SECONDS - start)) s"
