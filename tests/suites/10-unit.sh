#!/bin/bash
# Unit tests (Check): every $BUILD/tests/test_* binary.
# asan: yes
set -eu
n=0
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  echo "== $t"; "$t"; n=$((n+1))
done
[ "$n" -gt 0 ] || { echo "no unit test binaries in $BUILD/tests"; exit 1; }
