#!/usr/bin/env bash
# Make the man page of one program from its own --help and --version
# (help2man) and docs/man/PROG.h2m (name, description, environment, exit
# status, files, see also).  For pretrans, each command's --help becomes a
# section of the page, so the page says what `pretrans CMD --help` says.
#
#   docs/man/gen-man.sh BUILD_DIR PROG OUT.1
set -euo pipefail
build=$1 prog=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bin/$prog
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
cat "$here/$prog.h2m" >"$inc"
if [ "$prog" = pretrans ]; then
	echo "[COMMANDS]" >>"$inc"
	# the commands as `pretrans --help` lists them ("  NAME ARGS...")
	cmds=$("$bin" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' | grep -vx pretrans)
	[ -n "$cmds" ] || { echo "gen-man.sh: no commands in pretrans --help" >&2; exit 1; }
	for cmd in $cmds; do
		printf '.SS %s\n.nf\n' "$cmd" >>"$inc"
		# roff: a leading dot or quote would be a request; backslashes escaped
		"$bin" "$cmd" --help | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" >>"$inc"
		printf '.fi\n' >>"$inc"
	done
fi
help2man --no-info --include "$inc" --output "$out.tmp" "$bin"
mv "$out.tmp" "$out"
