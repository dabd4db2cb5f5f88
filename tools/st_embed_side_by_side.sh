#!/bin/bash
# Side by side on the accelerator machine's CPU: sentence-transformers `encode` (torch) and
# `t5 embed` / `t5 bench embed` on the same sentence-t5-base-shaped folder (random weights), the
# same texts (about 16-128 tokens), batch 32, THREADS threads each, pinned to the same CORES.
# Also checks that both give the same embeddings (cosine). Prints one line per engine.
# usage: tools/st_embed_side_by_side.sh [CORES (0,1)] [TEXTS (512)] [THREADS (2)]
set -eu
cd "$(dirname "$0")/.."
CORES=${1:-0,1}; N=${2:-512}; THREADS=${3:-2}
W=${WORK:-/tmp/st-embed-side}; mkdir -p "$W"
# the tokenizer files come from the st5-tiny fixture (ST5 overrides where it is looked for)
for d in "${ST5:-}" tests/fixtures/models/st5-tiny; do
  [ -n "$d" ] && [ -f "$d/tokenizer.json" ] && { ST5=$d; break; }
done
[ -f "${ST5:-}/tokenizer.json" ] || { echo "st_embed_side_by_side: set ST5 to the st5-tiny fixture folder"; exit 1; }
PY=${PYTHON:-python3}
make -s -j"$(nproc)" build/t5
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
"$PY" tools/st_embed_bench.py make-folder "$W/st5-base" build/t5 "$ST5"
"$PY" tools/st_embed_bench.py texts "$W/texts.txt" "$N"
echo "cores $CORES ($(taskset -c "$CORES" nproc) usable), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
taskset -c "$CORES" "$PY" tools/st_embed_bench.py st "$W/st5-base" "$W/texts.txt" "$THREADS" 32 3 "$W/st.npy"
"$PY" tools/st_embed_bench.py ours build/t5 "$W/st5-base" "$W/texts.txt" "$THREADS" 32 3 "$CORES" "$W/ours.jsonl"
"$PY" tools/st_embed_bench.py compare "$W/ours.jsonl" "$W/st.npy"
taskset -c "$CORES" build/t5 bench embed --model "$W/st5-base" --threads "$THREADS" --batches 1,32,256
