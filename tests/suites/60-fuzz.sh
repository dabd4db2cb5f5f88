#!/bin/bash
# 60-fuzz: builds the libFuzzer harnesses (tests/fuzz/, clang with ASan+UBSan, into
# build-fuzz/), replays every saved crash reproducer under tests/fuzz/regress/NAME/ through
# its harness, then fuzzes each harness for FUZZ_SUITE_SECONDS (default 10) seconds
# starting from its seed corpus tests/fuzz/corpus/NAME/. Fails on any crash, leak,
# sanitizer report, invariant failure or timeout. The long run is `make fuzz FUZZ_SECONDS=N`.
# Run time on the 2-core CI machine: about 1 min of build plus ~15 s per harness.
# (Not `# asan: yes`: the harnesses are sanitized builds already.)
set -eu
cd "$(dirname "$0")/../.."
secs=${FUZZ_SUITE_SECONDS:-10}
make -s -j"$(nproc)" fuzz-build
bins=()
for f in tests/fuzz/fuzz_*.c; do bins+=("build-fuzz/$(basename "$f" .c)"); done
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "60-fuzz: $b was not built"; exit 1; }; done
status=0
for b in "${bins[@]}"; do
  n=$(basename "$b")
  # 1. regression inputs: each must now run clean
  if [ -d "tests/fuzz/regress/$n" ] && [ -n "$(ls -A "tests/fuzz/regress/$n")" ]; then
    if "$b" -rss_limit_mb=2048 -timeout=60 "tests/fuzz/regress/$n"/* > "$WORK/$n.regress.log" 2>&1; then
      echo "$n: $(ls "tests/fuzz/regress/$n" | wc -l) regression inputs replayed clean"
    else
      echo "$n: a regression input fails again:"; tail -n 40 "$WORK/$n.regress.log"; status=1
    fi
  fi
  # 2. a short fuzzing run from the seed corpus
  mkdir -p "$WORK/corpus/$n"
  if "$b" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
       -artifact_prefix="$WORK/crash-$n-" "$WORK/corpus/$n" "tests/fuzz/corpus/$n" > "$WORK/$n.log" 2>&1; then
    echo "$n: $(grep -o 'number_of_executed_units: *[0-9]*' "$WORK/$n.log" | grep -o '[0-9]*$') runs in $secs s, clean"
  else
    echo "$n: FAILED"; tail -n 60 "$WORK/$n.log"
    for c in "$WORK/crash-$n-"*; do [ -f "$c" ] && { echo "reproducer (base64) $c:"; head -c 4096 "$c" | base64; }; done
    status=1
  fi
done
exit $status
