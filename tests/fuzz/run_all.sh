#!/bin/bash
# tests/fuzz/run_all.sh SECONDS: runs every libFuzzer harness (tests/fuzz/fuzz_*.c, built by
# `make fuzz-build` into build-fuzz/) for SECONDS each, one at a time at the lowest CPU
# priority, from its seed corpus tests/fuzz/corpus/NAME/ plus the inputs earlier runs kept in
# build-fuzz/corpus/NAME/ (never the repository). Prints one line per harness: executions,
# executions per second, corpus size, peak RSS, and "clean" or where the crash reproducer is.
# Exits 1 when any harness failed. Not a CI step: the long runs for docs/reliability.md.
# usage: tests/fuzz/run_all.sh SECONDS [HARNESS...]   (default: every harness)
set -u
cd "$(dirname "$0")/../.."
secs=${1:?usage: tests/fuzz/run_all.sh SECONDS [HARNESS...]}
shift
nice -n 19 make -s -j"$(nproc)" fuzz-build || { echo "run_all: fuzz-build failed"; exit 1; }
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi
mkdir -p build-fuzz/log
status=0
printf '%-18s %12s %8s %7s %8s  %s\n' harness executions exec/s corpus rss_mb result
for n in "${names[@]}"; do
  b=build-fuzz/$n
  [ -x "$b" ] || { echo "run_all: $b was not built"; status=1; continue; }
  mkdir -p "build-fuzz/corpus/$n"
  log=build-fuzz/log/$n.log
  if nice -n 19 "$b" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/crash-$n-" "build-fuzz/corpus/$n" "tests/fuzz/corpus/$n" > "$log" 2>&1; then
    result=clean
  else
    result="FAILED: $(ls build-fuzz/crash-"$n"-* 2>/dev/null | head -1) (log $log)"
    status=1
  fi
  ex=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$')
  corp=$(ls "build-fuzz/corpus/$n" | wc -l)
  printf '%-18s %12s %8s %7s %8s  %s\n' "$n" "${ex:-?}" "$(( ${ex:-0} / secs ))" "$corp" "${rss:-?}" "$result"
done
exit $status
