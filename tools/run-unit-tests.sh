#!/bin/sh
# Runs each cmocka unit-test binary and prints one closing summary line.
set -u
passed=0; failed=0
for t in "$@"; do
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t" >&2; fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
