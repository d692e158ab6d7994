#!/bin/sh
# check-fastpath.sh OBJ...: the objects of the memory and string call-outs'
# fast paths (runtime/tc/tc_fast.c, tc_strfast.c and what they call,
# FASTPATH_OBJS) run with the guest's x87/SSE/AVX state live in the
# registers (tc_entry.S tc_co_mem, tc_co_string).
# Fail if any of them uses an x87/MMX/SSE/AVX register or instruction, or
# calls a function the objects do not define themselves (a library call,
# memcpy/memset emitted by the compiler, logging).
set -eu
[ $# -gt 0 ] || { echo "usage: $0 OBJ..." >&2; exit 2; }
status=0
defined=$(nm --defined-only "$@" | awk 'NF == 3 && $2 ~ /[TtDdBbRr]/ {print $3}' | sort -u)
for o in "$@"; do
	[ -f "$o" ] || { echo "check-fastpath: $o: no such object" >&2; exit 2; }
	# instruction lines are "addr:<TAB>mnemonic operands"
	bad=$(objdump -d --no-show-raw-insn "$o" | awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ {print $2}' |
		grep -E '%(xmm|ymm|zmm|st|mm)[0-9(]|^(f[a-z0-9]*|v[a-z0-9]+|[a-z]*mxcsr|emms|movnt[a-z]*|cvt[a-z0-9]*|pxor|movdq[au]|movap[sd]|movup[sd]|x?rstor[a-z0-9]*|x?save[a-z0-9]*)([[:space:]]|$)' |
		head -5 || true)
	if [ -n "$bad" ]; then
		echo "check-fastpath: $o uses the FPU/SSE/AVX state:" >&2
		echo "$bad" >&2
		status=1
	fi
	for u in $(nm --undefined-only "$o" | awk '{print $NF}'); do
		if ! printf '%s\n' "$defined" | grep -qx "$u"; then
			echo "check-fastpath: $o calls or uses $u, which is not in the fast path's objects" >&2
			status=1
		fi
	done
done
[ $status -eq 0 ] && echo "check-fastpath: $# objects use general registers only, call only each other"
exit $status
