#!/bin/bash
# device_side_by_side.sh - t5serve next to ONNX Runtime (fp32 / int8) and transformers on the
# same CPU cores, the same random weights, the same 128-token inputs and 64 new tokens (the run
# behind the README's side-by-side table; made for the accelerator machine's Xeon, which has
# python3 with torch, transformers, onnxruntime). Every engine is pinned with taskset to the
# same cores. Not a test: it prints figures, one line per engine and point.
# usage: tools/bench/device_side_by_side.sh T5BIN PART...
#   PART: small2 (2 cores, small shape, batch 1/8/32), small16 (16 cores), base2 / base16 (the
#   base shape, 2 / 16 cores, batch 1/8/32), http16 (t5serve on 16 cores: workers x threads at
#   concurrency 64, next to the engine's batch-64 e2e rate); T5SERVE (env) is the server binary
#   for http16.
# env: TYPES (our compute types, default "auto bfloat16 int8"; int8:F:A adds --int8-float F and,
#   when A is given, --int8-a16 A; F may be empty: int8::none), REPS (default 2), W (scratch),
#   HF=0 skips transformers (a rerun for our types next to ONNX Runtime only)
set -u
cd "$(dirname "$0")/../.."
T5=$1
shift
PY=${PYTHON:-python3}
W=${W:-/tmp/side-by-side}
REPS=${REPS:-2}
TYPES=${TYPES:-auto bfloat16 int8}
PEERS=tools/bench/peers_bench.py
mkdir -p "$W"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) ($(nproc) cores); $(date -u +%F)"

model() { # $1 name, $2... random-model flags
  local d=$W/$1
  shift
  [ -f "$d/model.safetensors" ] || "$T5" random-model --out "$d" "$@" >/dev/null || exit 1
  [ -f "$W/$(basename "$d")-onnx/encoder.onnx" ] || "$PY" "$PEERS" export "$d" "$d-onnx" >/dev/null 2>&1 ||
    echo "export of $d failed"
}

base_model() { # the base shape (275M)
  model base --d-model 768 --heads 12 --d-kv 64 --d-ff 2048 --layers 12 --decoder-layers 12
}

side() { # $1 model dir, $2 cores, $3 threads, $4 batches
  local m=$1 cores=$2 th=$3 b=$4 t ct fl a16
  echo "== $(basename "$m"), $th threads on cores $cores, batches $b, 128 in / 64 out"
  for t in $TYPES; do
    echo "-- t5serve compute_type $t"
    IFS=: read -r ct fl a16 <<< "$t"
    local args=()
    [ "$ct" = auto ] || args+=(--compute-type "$ct")
    [ -z "$fl" ] || args+=(--int8-float "$fl")
    [ -z "$a16" ] || args+=(--int8-a16 "$a16")
    taskset -c "$cores" "$T5" bench engine --model "$m" --threads "$th" --batches "$b" \
      --input-tokens 128 --new-tokens 64 "${args[@]}" 2>&1 | sed '/matmul shapes/,$d'
  done
  for q in fp32 int8; do
    echo "-- ONNX Runtime $q"
    taskset -c "$cores" "$PY" "$PEERS" ort "$m-onnx" "$th" "$b" "$REPS" "$q" 128 64 2>&1 | tail -4
  done
  [ "${HF:-1}" = 0 ] && return
  echo "-- transformers"
  taskset -c "$cores" "$PY" "$PEERS" hf "$m" "$th" "$b" "$REPS" 128 64 2>&1 | tail -4
}

for part in "$@"; do
  case $part in
  small2) model small && side "$W/small" 0,1 2 1,8,32 ;;
  small16) model small && side "$W/small" 0-15 16 1,8,32 ;;
  base2) base_model && side "$W/base" 0,1 2 1,8,32 ;;
  base16) base_model && side "$W/base" 0-15 16 1,8,32 ;;
  http16)
    model small
    cp -n tests/fixtures/pegasus-tokenizer/vocab.txt "$W/small/" # the server serves text too
    echo "== t5serve HTTP on 16 cores, small shape, ids of 128 tokens, 64 new, concurrency 64"
    taskset -c 0-15 "$T5" bench engine --model "$W/small" --threads 16 --batches 64 --input-tokens 128 \
      --new-tokens 64 2>&1 | grep -E '^(batch|64) ' # the header and the batch-64 row (tok/s e2e)
    for wt in 1x16 2x8 4x4 8x2; do
      port=$((18000 + ${wt%x*}))
      taskset -c 0-15 "${T5SERVE:?}" --model "$W/small" --host 127.0.0.1 --port $port --workers "${wt%x*}" \
        --threads-per-worker "${wt#*x}" --max-batch 64 --queue-size 1024 --log-level warn \
        --request-timeout-ms 600000 &
      srv=$!
      for _ in $(seq 100); do "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/ready')" 2>/dev/null && break; sleep 0.2; done
      echo -n "workers x threads $wt: "
      "$PY" tools/bench/http_load.py $port 64 128 64 2
      kill $srv
      wait $srv 2>/dev/null
    done
    ;;
  *) echo "unknown part $part" ;;
  esac
done
