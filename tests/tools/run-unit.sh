#!/usr/bin/env bash
# Run every CMocka unit-test program; fail if any fails or none exists.
set -u
if [ $# -eq 0 ]; then
	echo "run-unit: no unit tests were built" >&2
	exit 1
fi
rc=0
for t in "$@"; do
	if ! "$t"; then
		echo "run-unit: $t failed" >&2
		rc=1
	fi
done
exit $rc
