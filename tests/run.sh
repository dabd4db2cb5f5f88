#!/bin/bash
# Runs the whole test suite: every tests/suites/NN-*.sh in order, first against the
# normal build (build/), then the suites marked `# asan: yes` again against the
# ASan+UBSan build (build-asan/). Prints one line per suite and a closing
# "tests: N passed, M failed, K skipped" line; exits non-zero when any suite failed.
# Each suite gets BUILD (binary folder), FIXTURES (tests/fixtures, the repository's copy of
# the reference data; set FIXTURES to use another) and WORK (a scratch folder) in its
# environment. A suite exits 0 on success, 77 (as automake's tests do) when this environment
# cannot run it at all (its last line says why: e.g. podman cannot start a container here),
# anything else on failure. A suite skips only for what the environment lacks, never for a
# failure of the code under test.
# usage: tests/run.sh [SUITE-NAME-SUBSTRING...]
set -u
cd "$(dirname "$0")/.."
export FIXTURES=${FIXTURES:-$(pwd)/tests/fixtures}
if [ ! -d "$FIXTURES/models" ]; then
  echo "tests: the fixtures folder $FIXTURES is missing (the repository's tests/fixtures)"; exit 1
fi
FIXTURES=$(cd "$FIXTURES" && pwd)
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
jobs=$(nproc)
make -s -j"$jobs" all || { echo "tests: build failed"; exit 1; }
make -s -j"$jobs" SAN=1 all || { echo "tests: sanitizer build failed"; exit 1; }

pass=0; fail=0; skip=0; failed=""; skipped=""
run_suite() { # $1 suite file, $2 build dir
  local name; name="$(basename "$1" .sh)$([ "$2" = build-asan ] && echo ' [asan]')"
  local work; work=$(mktemp -d /tmp/t5serve-test.XXXXXX)
  local t0=$SECONDS rc=0
  BUILD="$2" WORK="$work" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash "$1" > "$work.log" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    pass=$((pass+1)); echo "PASS  $name ($((SECONDS-t0)) s)"
  elif [ $rc -eq 77 ]; then
    skip=$((skip+1)); skipped="$skipped $name"
    echo "SKIP  $name ($((SECONDS-t0)) s): $(grep -v '^\s*$' "$work.log" | tail -n 1)"
  else
    fail=$((fail+1)); failed="$failed $name"
    echo "FAIL  $name ($((SECONDS-t0)) s, exit $rc); last lines of its log:"; tail -n 40 "$work.log" | sed 's/^/    /'
  fi
  rm -rf "$work" "$work.log"
}
selected() { local f=$1 s; shift; [ $# -eq 0 ] && return 0; for s in "$@"; do case "$f" in *"$s"*) return 0;; esac; done; return 1; }
suites=(tests/suites/*.sh)
for s in "${suites[@]}"; do selected "$s" "$@" && run_suite "$s" build; done
for s in "${suites[@]}"; do
  selected "$s" "$@" && grep -q '^# asan: yes' "$s" && run_suite "$s" build-asan
done
[ $skip -eq 0 ] || echo "skipped suites:$skipped"
[ $fail -eq 0 ] || echo "failed suites:$failed"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
