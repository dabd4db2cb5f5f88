#!/bin/bash
# bench_server.sh - t5serve's HTTP benchmark (not a test): a T5 PEGASUS small shaped
# model (random weights from `build/t5 random-model`, d_model 512, 6 x 64 heads, d_ff
# 1024, 8+8 layers, vocab 50000), inputs of 100 tokens, 32 new tokens (min = max).
# Prints, all measured in this run on this machine:
#   - /generate tokens/s and p50/p99 latency at concurrency 1, 8, 32, 64 (2 x C requests
#     per point, C in flight);
#   - the ratio of concurrency-32 to concurrency-1 token throughput;
#   - the fraction of the compute limit reached at concurrency 32: generated tokens/s
#     over (OpenBLAS's 2048^3 sgemm FLOP/s / FLOPs per generated token, encoder and
#     decoder, counted from the model shape);
#   - /tokenize requests/s at concurrency 32 next to nginx serving a static file of the
#     same size on this machine (target: at least half of nginx's rate);
# and draws build/bench/server.png (gnuplot): throughput and p50/p99 vs concurrency.
# usage: tools/bench_server.sh [SECONDS per /tokenize and nginx point (default 15)]
# env: BUILD (default build), OUT (default $BUILD/bench), T5SERVE_ARGS (extra flags)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/bench}
DUR=${1:-15}
FIXTURES=${FIXTURES:-$(pwd)/tests/fixtures}
mkdir -p "$OUT"
for t in wrk nginx gnuplot; do command -v $t >/dev/null || { echo "bench_server: $t is missing (scripts/install-deps.sh)"; exit 1; }; done
[ -x "$BUILD/t5serve" ] && [ -x "$BUILD/t5" ] && [ -x "$BUILD/sgemm_rate" ] || { echo "bench_server: run make first"; exit 1; }

MODEL=$OUT/pegasus-small-random
if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "== building a random T5 PEGASUS small shaped model in $MODEL"
  "$BUILD/t5" random-model --out "$MODEL" >/dev/null  # its defaults are the T5 PEGASUS small shape
fi
# the server needs a tokenizer beside the weights; T5 PEGASUS's is a BERT vocab.txt
[ -f "$MODEL/vocab.txt" ] || [ -f "$MODEL/spiece.model" ] || cp "$FIXTURES/pegasus-tokenizer/vocab.txt" "$MODEL/"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NGPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$OUT/t5serve.log
"$BUILD/t5serve" --model "$MODEL" --host 127.0.0.1 --port "$PORT" --max-batch 64 --queue-size 1024 \
  --log-level warn --request-timeout-ms 600000 ${T5SERVE_ARGS:-} 2>"$LOG" &
SRV=$!
NGINX_DIR=$(mktemp -d /tmp/bench-nginx.XXXXXX)
cleanup() {
  kill -TERM $SRV 2>/dev/null || true; wait $SRV 2>/dev/null || true
  [ -f "$NGINX_DIR/nginx.pid" ] && kill -QUIT "$(cat "$NGINX_DIR/nginx.pid")" 2>/dev/null || true
  rm -rf "$NGINX_DIR"
}
trap cleanup EXIT
for i in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "t5serve did not start:"; cat "$LOG"; exit 1; }
INFO=$(curl -sf "http://127.0.0.1:$PORT/info")

# request bodies: 100 input ids ([CLS] + 98 ids + [SEP]) and 32 new tokens
/usr/bin/python3 - "$OUT" "$INFO" <<'PY'
import json, random, sys
out, info = sys.argv[1], json.loads(sys.argv[2])
random.seed(1)
ids = [101] + [random.randrange(1000, 19000) for _ in range(98)] + [102]
gen = json.dumps({"ids": ids, "max_new_tokens": 32, "min_new_tokens": 32})
text = ("T5 PEGASUS 是一个中文生成式预训练模型, trained on a large corpus; "
        "the service tokenizes text like this 100-token line 并且 returns ids quickly.") * 2
tok = json.dumps({"text": text})
for name, body in (("generate", gen), ("tokenize", tok)):
    with open(f"{out}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body)}\n")
PY
TOK_ANSWER=$(curl -sf -X POST --data-binary @<(sed -n 's/^wrk.body = //p' "$OUT/tokenize.lua" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read()))') "http://127.0.0.1:$PORT/tokenize")
echo "== tokenize answer: $(echo "$TOK_ANSWER" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ids"]))') ids"

# wrk output -> "req_per_s p50_ms p99_ms errors"
cat > "$OUT/wrk_parse.py" <<'PY'
import re, sys
t = sys.stdin.read()
def ms(v, u): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p = {k: ms(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M)}
err = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", t))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
err += sum(int(x) for x in m.groups()) if m else 0
print("%.3f %.1f %.1f %d" % (rps, p.get("50", 0), p.get("99", 0), err))
PY
wrk_parse() { /usr/bin/python3 "$OUT/wrk_parse.py"; }

echo "== sgemm 2048^3 (OpenBLAS, this run)"
GFLOPS=$("$BUILD/sgemm_rate" 2048 5 2>/dev/null)
echo "   $GFLOPS GFLOP/s"

DAT=$OUT/server.dat
# /generate: a fixed number of requests (2 x concurrency, at least 4) kept C in flight, so
# that slow points still complete whole requests and no abandoned request (as wrk leaves at
# the end of a timed run) competes with the next point.
cat > "$OUT/gen_load.py" <<'PY'
import http.client, json, sys, threading, time
port, conc, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3]).read().encode()
n = max(4, 2 * conc)
lat, errs, lock, nxt = [], [0], threading.Lock(), [0]
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    while True:
        with lock:
            if nxt[0] >= n:
                break
            nxt[0] += 1
        t0 = time.time()
        c.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        ok = r.status == 200 and json.loads(data)["usage"]["output_tokens"] == 32
        with lock:
            lat.append(time.time() - t0)
            errs[0] += not ok
    c.close()
t0 = time.time()
ts = [threading.Thread(target=worker) for _ in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
wall = time.time() - t0
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] * 1000
ok = n - errs[0]
print("%.2f %.0f %.0f %.4f %d %d %.1f" % (ok * 32 / wall, pct(0.5), pct(0.99), ok / wall, errs[0], n, wall))
PY
sed -n 's/^wrk.body = //p' "$OUT/generate.lua" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read()), end="")' > "$OUT/generate.json"
curl -sf -X POST --data-binary @"$OUT/generate.json" "http://127.0.0.1:$PORT/generate" >/dev/null  # warm-up
echo "# concurrency tokens_per_s p50_ms p99_ms req_per_s errors requests wall_s" > "$DAT"
echo "== /generate: 100 input tokens, 32 new tokens; 2 x concurrency requests per point"
printf "   %-5s %12s %10s %10s %8s %9s\n" conc "tokens/s" "p50 ms" "p99 ms" errors "wall s"
for C in 1 8 32 64; do
  read -r TPS P50 P99 RPS ERR N WALL < <(/usr/bin/python3 "$OUT/gen_load.py" "$PORT" "$C" "$OUT/generate.json")
  printf "   %-5s %12s %10s %10s %8s %9s\n" "$C" "$TPS" "$P50" "$P99" "$ERR" "$WALL"
  echo "$C $TPS $P50 $P99 $RPS $ERR $N $WALL" >> "$DAT"
done
# the GEMM rate again, after the generation points: the limit uses the better of the two
GFLOPS2=$("$BUILD/sgemm_rate" 2048 5 2>/dev/null)
echo "== sgemm 2048^3 again: $GFLOPS2 GFLOP/s (the compute limit uses the larger of the two)"
GFLOPS=$(/usr/bin/python3 -c "print(max($GFLOPS, $GFLOPS2))")

echo "== /tokenize at concurrency 32 vs nginx serving a static file of the same size"
printf '%s' "$TOK_ANSWER" > "$NGINX_DIR/answer.json"
cat > "$NGINX_DIR/nginx.conf" <<NGX
worker_processes auto;
daemon on;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR; proxy_temp_path $NGINX_DIR; fastcgi_temp_path $NGINX_DIR;
  uwsgi_temp_path $NGINX_DIR; scgi_temp_path $NGINX_DIR;
  server { listen 127.0.0.1:$NGPORT; root $NGINX_DIR; location / { default_type application/json; } }
}
NGX
nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" -e "$NGINX_DIR/error.log"
sleep 0.5
read -r NG_RPS _ _ NG_ERR < <(wrk -t2 -c32 -d"${DUR}s" --latency "http://127.0.0.1:$NGPORT/answer.json" | wrk_parse)
read -r TK_RPS TK_P50 TK_P99 TK_ERR < <(wrk -t2 -c32 -d"${DUR}s" --latency -s "$OUT/tokenize.lua" \
  "http://127.0.0.1:$PORT/tokenize" | wrk_parse)
echo "   t5serve /tokenize: $TK_RPS requests/s (p50 $TK_P50 ms, p99 $TK_P99 ms, errors $TK_ERR)"
echo "   nginx static file: $NG_RPS requests/s (errors $NG_ERR)"

/usr/bin/python3 - "$DAT" "$INFO" "$GFLOPS" "$TK_RPS" "$NG_RPS" <<'PY'
import json, sys
dat, info, gflops, tk, ng = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rows = {int(l.split()[0]): [float(x) for x in l.split()[1:]] for l in open(dat) if not l.startswith("#")}
c = info["model"]["config"]
d, inner, ff, V = c["d_model"], c["num_heads"] * c["d_kv"], c["d_ff"], c["vocab_size"]
ffn = (3 if c["gated"] else 2) * d * ff
enc_params = c["num_layers"] * (4 * d * inner + ffn)
dec_params = c["num_decoder_layers"] * (2 * d * inner + 2 * d * inner + ffn) + d * V  # self q,k,v,o; cross q,o; head
cross_kv = c["num_decoder_layers"] * 2 * d * inner   # per input token, once per request
n_in, n_out = 100, 32
flops_req = 2 * n_in * (enc_params + cross_kv) + 2 * n_out * dec_params
per_tok = flops_req / n_out
limit = gflops * 1e9 / per_tok
t1, t32 = rows[1][0], rows[32][0]
if t1 <= 0 or t32 <= 0 or ng <= 0:
    sys.exit("bench_server: a point measured no completed request; run longer (SECONDS argument)")
print(f"== FLOPs per request {flops_req / 1e9:.2f} G (encoder {2 * n_in * (enc_params + cross_kv) / 1e9:.2f} G, "
      f"decoder {2 * n_out * dec_params / 1e9:.2f} G): {per_tok / 1e6:.0f} MFLOP per generated token")
print(f"== compute limit at {gflops:.0f} GFLOP/s: {limit:.0f} tokens/s")
print(f"== concurrency 32 / concurrency 1 token throughput: {t32:.1f} / {t1:.1f} = {t32 / t1:.2f}x")
print(f"== fraction of the compute limit at concurrency 32: {t32 / limit:.2f} (issue 12: >= 0.7)")
print(f"== /tokenize vs nginx at concurrency 32: {tk:.0f} / {ng:.0f} = {tk / ng:.2f} (target >= 0.5)")
PY

gnuplot <<GP
set terminal pngcairo size 900,520 font ",11"
set output "$OUT/server.png"
set title "t5serve /generate: T5 PEGASUS small shape, 100 input + 32 new tokens"
set xlabel "concurrent requests"
set ylabel "generated tokens/s"
set y2label "latency (ms)"
set ytics nomirror
set y2tics
set logscale x 2
set xtics (1, 8, 32, 64)
set xrange [0.8:80]
set key top left
set grid
plot "$DAT" using 1:2 with linespoints lw 2 title "tokens/s", \
     "$DAT" using 1:3 axes x1y2 with linespoints dt 2 title "p50 latency", \
     "$DAT" using 1:4 axes x1y2 with linespoints dt 3 title "p99 latency"
GP
echo "== plot: $OUT/server.png"
