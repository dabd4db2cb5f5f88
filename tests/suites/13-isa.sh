#!/bin/bash
# One answer on every CPU, through `t5 generate --format json` (ids, text, scores,
# per-token logprobs): greedy, beam and seeded sampling outputs byte-identical under
# --isa generic, avx2, avx512 and amx (each capped to what the CPU has; the ones it lacks
# are reported) on every generating fixture model (and `t5 embed` on the encoder-only ones), on random models of odd shapes in
# float32 / float16 / bfloat16 (16-bit panels, tails of every kernel), and on a random
# T5 PEGASUS small model (float32; normal build only: the portable path is slow under
# ASan); and the same under --compute-type int8 (the defaults: 16-bit activations in the blocks,
# 8-bit in the head; every
# matrix int8; 8-bit activations): the int8 kernels (C, AVX2 vpmaddwd, AVX-512 VNNI, AMX-INT8 tdpbssd) give one answer.
# Bit-exactness alone vs batched and the kernels themselves: test_engine_isa; and
# test_engine_isa_emulated, the same with the AVX-512, VNNI and AMX kernels run through SIMDe's
# portable AVX-512 and C tiles on any AVX2 CPU, so that a machine without them checks them too.
# Run time: about 40 s (normal build, 2 cores), 60 s under ASan.
# asan: yes
set -eu
T5="$BUILD/t5"
M="$FIXTURES/models"
fail() { echo "FAIL: $*"; exit 1; }
have=$(grep -o -w -e avx2 -e avx512f -e avx512bw -e avx512_vnni -e amx_int8 /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "CPU flags: ${have:-none of avx2/avx512/amx}"
"$BUILD/tests/test_engine_isa_emulated" || fail "the AVX-512 and AMX kernels under emulation (test_engine_isa_emulated)"

# $1 model, $2 input file, rest: extra flags; every ISA's output against generic's
same_everywhere() {
  local model=$1 in=$2; shift 2
  local mode
  for mode in "" "--num-beams 3 --num-return-sequences 2" "--do-sample --seed 7 --top-k 30 --num-return-sequences 2"; do
    # shellcheck disable=SC2086
    "$T5" generate --model "$model" --format json --max-new-tokens 12 $mode "$@" --isa generic < "$in" > "$WORK/generic" \
      || fail "$model generic $mode"
    [ -s "$WORK/generic" ] || fail "$model: no output"
    for isa in avx2 avx512 amx auto; do
      # shellcheck disable=SC2086
      "$T5" generate --model "$model" --format json --max-new-tokens 12 $mode "$@" --isa $isa < "$in" > "$WORK/$isa" \
        || fail "$model $isa $mode"
      cmp -s "$WORK/generic" "$WORK/$isa" || { diff "$WORK/generic" "$WORK/$isa" | head -5; fail "$model: --isa $isa differs from generic ($mode)"; }
    done
  done
  echo "$(basename "$model")${*:+ ($*)}: greedy, beam, sampling identical under generic, avx2, avx512, amx, auto"
}

printf '季路问事鬼神。\n敢问死。曰：未知生，焉知死？\n' > "$WORK/text"
same_everywhere "$M/t5-tiny-pegasus" "$WORK/text"
printf '%s\n' "5 17 33 2 9 1" "100 200 300 1" > "$WORK/ids"
for name in t5-tiny-gated t5-tiny-relu; do same_everywhere "$M/$name" "$WORK/ids" --input ids; done
same_everywhere "$M/t5-tiny-pegasus" "$WORK/text" --compute-type int8
same_everywhere "$M/t5-tiny-gated" "$WORK/ids" --input ids --compute-type int8 --int8-float none
same_everywhere "$M/t5-tiny-gated" "$WORK/ids" --input ids --compute-type int8 --int8-float none --int8-a16 none

# encoder-only models: t5 embed (sentence and token embeddings) the same way
for name in st5-tiny t5-enc-tiny; do
  for pool in "" "--pooling none"; do
    # shellcheck disable=SC2086
    "$T5" embed --model "$M/$name" --input ids $pool --isa generic < "$WORK/ids" > "$WORK/generic" || fail "$name embed"
    for isa in avx2 avx512 amx auto; do
      # shellcheck disable=SC2086
      "$T5" embed --model "$M/$name" --input ids $pool --isa $isa < "$WORK/ids" > "$WORK/$isa" || fail "$name embed $isa"
      cmp -s "$WORK/generic" "$WORK/$isa" || fail "$name: t5 embed $pool --isa $isa differs from generic"
    done
  done
  echo "$name: t5 embed (pooled and per token) identical under generic, avx2, avx512, amx, auto"
done

# odd shapes: nothing a multiple of 16 (every kernel's tails), 16-bit panels
for dt in f32 f16 bf16; do
  "$T5" random-model --out "$WORK/odd-$dt" --vocab 3001 --d-model 200 --d-kv 24 --heads 5 --d-ff 333 --layers 2 \
    --decoder-layers 3 --dtype $dt --seed 4 > /dev/null || fail "random-model $dt"
  same_everywhere "$WORK/odd-$dt" "$WORK/ids" --input ids
done
same_everywhere "$WORK/odd-f32" "$WORK/ids" --input ids --compute-type int8 --int8-float none
same_everywhere "$WORK/odd-f32" "$WORK/ids" --input ids --compute-type int8 --int8-a16 none

if [ "$(basename "$BUILD")" != build-asan ]; then
  "$T5" random-model --out "$WORK/peg-small" --seed 3 > /dev/null || fail "random-model pegasus small"
  printf '%s\n' "5 6 7 8 9 10 11 12 1" > "$WORK/ids1"
  same_everywhere "$WORK/peg-small" "$WORK/ids1" --input ids --max-new-tokens 6
  same_everywhere "$WORK/peg-small" "$WORK/ids1" --input ids --max-new-tokens 6 --compute-type int8 --int8-float none
  same_everywhere "$WORK/peg-small" "$WORK/ids1" --input ids --max-new-tokens 6 --compute-type int8 --int8-a16 none
fi
