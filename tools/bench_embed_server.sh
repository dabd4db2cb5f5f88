#!/bin/bash
# bench_embed_server.sh - t5serve's POST /embed benchmark (not a test), beside
# bench_server.sh: an encoder-only model with random weights (`build/t5 random-model
# --encoder-only`, the T5 PEGASUS small encoder shape unless SHAPE says otherwise: d_model
# 512, 6 x 64 heads, d_ff 1024, 8 layers, gated-gelu, vocab 50000; T5 PEGASUS's vocab.txt
# tokenizer), texts of exactly 32 tokens (`</s>`/[SEP] included, checked against the
# answer's usage). Prints, all measured in this run on this machine:
#   - /embed requests/s and p50/p99 latency at concurrency 1 and 32 (wrk, one text per
#     request, mean pooling), every answer 200;
#   - next to it the engine alone: `build/t5 bench embed` on the same folder, batches of
#     1 and 32 texts of 32 tokens, same threads (sentences/s, and its FMA peak).
# The HTTP figure at concurrency 32 can approach the engine's batch-32 one only because
# concurrent /embed requests share encoder passes (SRV_TASK_EMBED tasks of one step).
# usage: tools/bench_embed_server.sh [SECONDS per point (default 10)]
# env: BUILD (default build), OUT (default $BUILD/bench-embed), SHAPE (random-model flags),
#      T5SERVE_ARGS (extra server flags)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/bench-embed}
DUR=${1:-10}
FIXTURES=${FIXTURES:-$(cd .. && pwd)/shared/fixtures}
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "bench_embed_server: wrk is missing (scripts/install-deps.sh)"; exit 1; }
[ -x "$BUILD/t5serve" ] && [ -x "$BUILD/t5" ] || { echo "bench_embed_server: run make first"; exit 1; }

MODEL=$OUT/encoder-random
if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "== building a random encoder-only model in $MODEL"
  # shellcheck disable=SC2086
  "$BUILD/t5" random-model --out "$MODEL" --encoder-only ${SHAPE:-} >/dev/null
fi
[ -f "$MODEL/vocab.txt" ] || [ -f "$MODEL/spiece.model" ] || cp "$FIXTURES/pegasus-tokenizer/vocab.txt" "$MODEL/"
THREADS=$(nproc)

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$OUT/t5serve.log
"$BUILD/t5serve" --model "$MODEL" --host 127.0.0.1 --port "$PORT" --queue-size 1024 --log-level warn \
  --threads-per-worker "$THREADS" ${T5SERVE_ARGS:-} 2>"$LOG" &
SRV=$!
trap 'kill -TERM $SRV 2>/dev/null || true; wait $SRV 2>/dev/null || true' EXIT
for i in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "t5serve did not start:"; cat "$LOG"; exit 1; }

# a text of exactly 32 tokens ([SEP] included): characters added until the answer's usage says 32
/usr/bin/python3 - "$OUT" "$PORT" <<'PY'
import http.client, json, sys
out, port = sys.argv[1], int(sys.argv[2])
src = "今天天气很好我们一起去公园散步然后在湖边看书喝茶聊天直到太阳下山才回家路上还买了一些水果和点心" * 2
c = http.client.HTTPConnection("127.0.0.1", port)
def embed(text):
    body = json.dumps({"text": text})  # \u escapes: ASCII, for the Lua string below
    c.request("POST", "/embed", body=body.encode(), headers={"Content-Type": "application/json"})
    return body, json.loads(c.getresponse().read())
for k in range(1, len(src)):
    body, a = embed(src[:k])
    n = a["usage"]["input_tokens"]
    if n == 32:
        break
    if n > 32:  # a word of two tokens crossed 32: one character less, and a one-token ending
        body, a = embed(src[:k - 1] + "。")
        n = a["usage"]["input_tokens"]
        break
if n != 32:
    sys.exit(f"bench_embed_server: no prefix gives 32 tokens ({n})")
print(f"== /embed answer: {len(a['embedding'])} floats, {n} input tokens")
with open(f"{out}/embed.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{body}]==]\n")
PY
parse() { # wrk output -> "req_per_s p50_ms p99_ms errors"
  /usr/bin/python3 -c '
import re, sys
t = sys.stdin.read()
ms = lambda v, u: float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p = {k: ms(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M)}
err = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", t))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
err += sum(int(x) for x in m.groups()) if m else 0
print("%.1f %.2f %.2f %d" % (rps, p.get("50", 0), p.get("99", 0), err))'
}
echo "== /embed over HTTP (wrk, ${DUR} s per point; server: 1 worker x $THREADS threads)"
printf "   %-5s %12s %10s %10s %8s\n" conc "requests/s" "p50 ms" "p99 ms" errors
for C in 1 32; do
  T=$([ "$C" = 1 ] && echo 1 || echo 2)
  read -r RPS P50 P99 ERR < <(wrk -t"$T" -c"$C" -d"${DUR}s" --latency -s "$OUT/embed.lua" \
    "http://127.0.0.1:$PORT/embed" | parse)
  printf "   %-5s %12s %10s %10s %8s\n" "$C" "$RPS" "$P50" "$P99" "$ERR"
done
kill -TERM $SRV; wait $SRV 2>/dev/null || true
trap - EXIT
echo "== the engine alone: t5 bench embed, same folder, $THREADS threads, 32-token texts"
"$BUILD/t5" bench embed --model "$MODEL" --threads "$THREADS" --batches 1,32 --tokens 32 --seconds "$DUR"
