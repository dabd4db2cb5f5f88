#!/bin/sh
# `make bench`: the benchmarks, each printing our figures next to references measured
# in the same run. Engine: a random-weight model of the T5 PEGASUS small shape (made
# once by `t5 random-model`, 381 MB, in $BENCH_DIR), 128 input tokens, 64 new tokens
# forced, batch 1 / 8 / 32, next to the machine's memory bandwidth and OpenBLAS rate.
# Tokenizer / server benchmarks have their own scripts (tools/bench_*.sh).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BENCH_DIR=${BENCH_DIR:-/tmp/t5serve-bench}
THREADS=${THREADS:-2}
model="$BENCH_DIR/t5-pegasus-small-random"
if [ ! -f "$model/model.safetensors" ]; then
  mkdir -p "$BENCH_DIR"
  "$BUILD/t5" random-model --out "$model"
fi
echo "== engine (t5 bench engine, $THREADS threads)"
"$BUILD/t5" bench engine --model "$model" --threads "$THREADS"
