#!/bin/bash
# Runs the whole test suite: every tests/suites/NN-*.sh in order, first against the
# normal build (build/), then the suites marked `# asan: yes` again against the
# ASan+UBSan build (build-asan/). Prints one line per suite and a closing
# "tests: N passed, M failed" line; exits non-zero when any suite failed.
# Each suite gets BUILD (binary folder), FIXTURES (../shared/fixtures) and
# WORK (a scratch folder) in its environment and exits 0 on success.
# usage: tests/run.sh [SUITE-NAME-SUBSTRING...]
set -u
cd "$(dirname "$0")/.."
export FIXTURES=${FIXTURES:-$(cd .. && pwd)/shared/fixtures}
if [ ! -d "$FIXTURES" ]; then
  echo "tests: the fixtures folder $FIXTURES is missing (expected ../shared/fixtures)"; exit 1
fi
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
jobs=$(nproc)
make -s -j"$jobs" all || { echo "tests: build failed"; exit 1; }
make -s -j"$jobs" SAN=1 all || { echo "tests: sanitizer build failed"; exit 1; }

pass=0; fail=0; failed=""
run_suite() { # $1 suite file, $2 build dir
  local name; name="$(basename "$1" .sh)$([ "$2" = build-asan ] && echo ' [asan]')"
  local work; work=$(mktemp -d /tmp/t5serve-test.XXXXXX)
  local t0=$SECONDS
  if BUILD="$2" WORK="$work" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash "$1" > "$work.log" 2>&1; then
    pass=$((pass+1)); echo "PASS  $name ($((SECONDS-t0)) s)"
  else
    fail=$((fail+1)); failed="$failed $name"
    echo "FAIL  $name ($((SECONDS-t0)) s); last lines of its log:"; tail -n 40 "$work.log" | sed 's/^/    /'
  fi
  rm -rf "$work" "$work.log"
}
selected() { local f=$1 s; shift; [ $# -eq 0 ] && return 0; for s in "$@"; do case "$f" in *"$s"*) return 0;; esac; done; return 1; }
suites=(tests/suites/*.sh)
for s in "${suites[@]}"; do selected "$s" "$@" && run_suite "$s" build; done
for s in "${suites[@]}"; do
  selected "$s" "$@" && grep -q '^# asan: yes' "$s" && run_suite "$s" build-asan
done
[ $fail -eq 0 ] || echo "failed suites:$failed"
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
