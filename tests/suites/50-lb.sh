#!/bin/bash
# 50-lb: three real t5serve replicas behind the real nginx (Debian's, with the shipped
# deploy/nginx/t5serve.conf, only ports and log path changed), all on loopback. A stream of
# concurrent /generate and /tokenize requests goes through nginx while one replica is killed
# with SIGKILL and another stopped with SIGTERM, both while requests are in flight on them.
# Passes when every request got the right answer (the fixture goldens: transformers' greedy
# ids, SentencePiece's input ids and decoding) either at once or after nginx retried it,
# the balancer's log shows requests in flight on both signalled replicas, and the SIGTERMed
# replica drained and exited 0. It does not measure speed.
# Run time: about 30 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BUILD:=build}" "${FIXTURES:=tests/fixtures}" "${WORK:=$(mktemp -d)}"
T5SERVE=$BUILD/t5serve
MODEL=$FIXTURES/models/t5-tiny-gated
GOLDEN=$FIXTURES/models/t5-tiny-gated.golden.json
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PY=/usr/bin/python3

for f in "$T5SERVE" "$MODEL/model.safetensors" "$GOLDEN" "$NGINX"; do
  [ -e "$f" ] || { echo "50-lb: missing $f"; exit 1; }
done

pids=()      # replicas still to be reaped
PID_nginx=
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -z "$PID_nginx" ] || kill -TERM "$PID_nginx" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Four free loopback ports: three replicas and the balancer.
read -r P1 P2 P3 PLB < <($PY -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

wait_ready() { # $1 URL: waits up to 60 s for 200 from $1
  for _ in $(seq 600); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "50-lb: $1 never answered 200"; return 1
}

start_replica() { # $1 port $2 name [$3 max_batch]
  T5SERVE_HOST=127.0.0.1 T5SERVE_PORT=$1 T5SERVE_MODEL=$MODEL T5SERVE_WORKERS=1 \
    T5SERVE_MAX_BATCH=${3:-32} T5SERVE_DRAIN_TIMEOUT_MS=20000 "$T5SERVE" > "$WORK/$2.log" 2>&1 &
  pids+=($!)
  eval "PID_$2=$!"
}
# The two replicas that get signalled take one sequence at a time: their requests then queue,
# so some are still in hand when the signal lands (this fixture's generations take 1-10 ms on a
# fast CPU: with batching, a replica could finish all it held while lb_load read its /metrics).
start_replica "$P1" r1 1
start_replica "$P2" r2 1
start_replica "$P3" r3
for p in $P1 $P2 $P3; do wait_ready "http://127.0.0.1:$p/ready"; done
echo "50-lb: replicas r1 :$P1 (pid $PID_r1), r2 :$P2 (pid $PID_r2), r3 :$P3 (pid $PID_r3) ready"

# nginx with its own prefix in $WORK, unprivileged port, loopback only.
N=$WORK/nginx
mkdir -p "$N/tmp"
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$P1/; s/127\.0\.0\.1:8082/127.0.0.1:$P2/" \
    -e "s/127\.0\.0\.1:8083/127.0.0.1:$P3/; s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$PLB;/" \
    -e "s#/var/log/nginx/#$N/#" deploy/nginx/t5serve.conf > "$N/t5serve.conf"
grep -q "listen 127.0.0.1:$PLB;" "$N/t5serve.conf" && grep -q "127.0.0.1:$P3 " "$N/t5serve.conf" \
  || { echo "50-lb: could not adapt deploy/nginx/t5serve.conf"; exit 1; }
cat > "$N/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 512; }
http {
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    include $N/t5serve.conf;
}
EOF
"$NGINX" -p "$N" -c "$N/nginx.conf" -e "$N/error.log" -t -q
"$NGINX" -p "$N" -c "$N/nginx.conf" -e "$N/error.log" &
PID_nginx=$!
wait_ready "http://127.0.0.1:$PLB/ready"
echo "50-lb: nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on :$PLB in front of them"

# The stream: 600 requests (2/3 /generate), 16 at a time; r1 gets SIGKILL after 30%, r2
# SIGTERM after 60%.
rc=0
$PY tests/deploy/lb_load.py --url "http://127.0.0.1:$PLB" --golden "$GOLDEN" \
    --spm "$MODEL/spiece.model" --kill "$PID_r1,http://127.0.0.1:$P1" \
    --term "$PID_r2,http://127.0.0.1:$P2" --total 600 --concurrency 16 --deadline 150 \
    --access-log "$N/t5serve.access.log" --out "$WORK/result.json" | tee "$WORK/lb_load.out" || rc=1

# r1 died of SIGKILL (137); r2 drained and exited 0 on its own.
set +e
wait "$PID_r1" 2>/dev/null; st1=$?
for _ in $(seq 300); do kill -0 "$PID_r2" 2>/dev/null || break; sleep 0.1; done
wait "$PID_r2"; st2=$?
set -e
echo "50-lb: r1 exit status $st1 (SIGKILL), r2 exit status $st2 after SIGTERM"
[ "$st1" -eq 137 ] || { echo "50-lb: r1 should have died of SIGKILL"; rc=1; }
[ "$st2" -eq 0 ] || { echo "50-lb: r2 did not drain and exit 0 after SIGTERM"; rc=1; }

echo "50-lb: nginx saw these upstream failures (its error log):"
grep -oE '(connect\(\) failed|recv\(\) failed|upstream prematurely closed)[^,]*' "$N/error.log" \
  | sort | uniq -c | sed 's/^/    /' || true
echo "50-lb: first retried requests in the balancer's access log:"
grep -E 'up=\[[^]]*,' "$N/t5serve.access.log" | head -n 6 | sed 's/^/    /' || true

# r3 alone still answers, streams included (SSE through nginx with buffering off), then
# stops cleanly too.
curl -fsS -N --max-time 30 -d '{"text":"Hello world","max_new_tokens":24,"stream":true}' \
  "http://127.0.0.1:$PLB/generate" > "$WORK/sse.txt" \
  || { echo "50-lb: the balancer stopped answering with one replica left"; rc=1; }
$PY - "$GOLDEN" "$WORK/sse.txt" <<'EOF' || rc=1
import json, sys
want = next(c for c in json.load(open(sys.argv[1], encoding="utf-8"))["cases"]
            if c["text"] == "Hello world")["greedy"]["ids"]
events = [l[6:] for l in open(sys.argv[2], encoding="utf-8").read().split("\n") if l.startswith("data: ")]
assert events and events[-1] == "[DONE]", "the stream did not end with [DONE]: %r" % events[-3:]
ids = [json.loads(e)["token"]["id"] for e in events[:-2]]
final = json.loads(events[-2])
assert ids in (want, [i for i in want if i != 1]), "streamed ids %r != golden %r" % (ids, want)
assert final["finish_reason"] == "eos", final
print("50-lb: a stream through nginx: %d token events, the golden ids, then %r and [DONE]"
      % (len(ids), final["text"]))
EOF
kill -TERM "$PID_r3"
set +e; wait "$PID_r3"; st3=$?; set -e
[ "$st3" -eq 0 ] || { echo "50-lb: r3 exit status $st3 after SIGTERM"; rc=1; }

pids=()
kill -QUIT "$PID_nginx"; wait "$PID_nginx" || true; PID_nginx=
# On failure: the replicas' last lines, then (last, so a short log tail shows it) why.
[ $rc -eq 0 ] && echo "50-lb: ok" || { tail -n 20 "$WORK"/r*.log; grep -hE '^(lb_load|50-lb):' "$WORK/lb_load.out" "$WORK/sse.txt" 2>/dev/null | tail -n 12; echo "50-lb: FAILED"; }
exit $rc
