#!/usr/bin/env bash
# Run each check step (a make target declared by a module.mk) and print one
# closing line "N passed, N failed".  A step passes when its target exits 0.
set -u
build=$1
shift
pass=0
fail=0
failed=()
for step in "$@"; do
	echo "=== check: $step"
	start=$(date +%s)
	if make --no-print-directory BUILD="$build" "$step"; then
		pass=$((pass + 1))
		echo "=== PASS: $step ($(($(date +%s) - start)) s)"
	else
		fail=$((fail + 1))
		failed+=("$step")
		echo "=== FAIL: $step ($(($(date +%s) - start)) s)"
	fi
done
if [ $fail -ne 0 ]; then
	echo "failed steps: ${failed[*]}"
fi
echo "check: $pass passed, $fail failed"
[ $fail -eq 0 ]
