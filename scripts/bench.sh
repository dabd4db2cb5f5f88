#!/bin/bash
# `make bench`: every benchmark, each printing our figures next to a reference measured
# in the same run (not tests: nothing passes or fails on speed). Figures land in
# build/bench/*.txt; the README quotes them. Takes ~15 minutes on 2 idle cores.
#   1. tokenizer: t5 bench tokenizer (vs SentencePiece's C++ encoder) on the corpus, then
#      its subword sampling (FFBS and one-pass vs SentencePiece's SampleEncode)
#   2. T5 PEGASUS tokenizer: tools/bench_wordpiece.sh (vs python3-jieba + BERT step)
#   3. engine: t5 bench engine on a random T5 PEGASUS small model (vs memory bandwidth
#      and the OpenBLAS sgemm rate)
#   4. server: tools/bench_server.sh (vs the compute limit and nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}
mkdir -p "$B/bench"
corpus=$B/bench/corpus.txt
[ -s "$corpus" ] || tools/make_corpus.sh "$corpus" >/dev/null
echo "== tokenizer"; "$B/t5" bench tokenizer --corpus "$corpus" | tee "$B/bench/tokenizer.txt"
echo "== tokenizer sampling"; "$B/t5" bench tokenizer --corpus "$corpus" --alpha 0.1 | tee "$B/bench/tokenizer_sampling.txt"
echo "== T5 PEGASUS tokenizer"; tools/bench_wordpiece.sh "$corpus" | tee "$B/bench/wordpiece.txt"
model=$B/bench/pegasus-small
[ -f "$model/model.safetensors" ] || "$B/t5" random-model --out "$model" >/dev/null
echo "== engine"; "$B/t5" bench engine --model "$model" | tee "$B/bench/engine.txt"
echo "== server"; tools/bench_server.sh | tee "$B/bench/server.txt"
