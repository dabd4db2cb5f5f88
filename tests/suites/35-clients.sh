#!/bin/bash
# 35-clients: t5serve through the real client libraries, no mocks: the `openai` Node SDK
# 6.49.0 and @huggingface/inference 4.13.16 and 4.13.30 (tests/clients/package.json,
# installed by this suite into $BUILD/node from the npm registry; neither `openai` nor
# `huggingface_hub` is packaged in Debian 12, so the Python clients are not used) against
# real servers with an API key, on t5-tiny-gated and (embeddings) st5-tiny
# (tests/clients/clients.mjs).
# Needs node and npm (scripts/install-deps.sh). Runs in about 10 s after the install.
# asan: yes
set -eu
: "${BUILD:=build}" "${FIXTURES:=tests/fixtures}" "${WORK:=$(mktemp -d)}"
MODEL=$FIXTURES/models/t5-tiny-gated
GOLDEN=$FIXTURES/models/t5-tiny-gated.golden.json
for f in "$BUILD/t5serve" "$MODEL/model.safetensors" "$GOLDEN"; do
  [ -e "$f" ] || { echo "35-clients: missing $f"; exit 1; }
done
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "35-clients: node and npm are needed (scripts/install-deps.sh installs them)"; exit 1; }

# the packages, installed once per package.json (build/node is ignored by git)
NODE_DIR=$BUILD/node
mkdir -p "$NODE_DIR"
if ! cmp -s tests/clients/package.json "$NODE_DIR/package.json" || [ ! -d "$NODE_DIR/node_modules/hfi-new" ]; then
  cp tests/clients/package.json "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --no-package-lock >"$WORK/npm.log" 2>&1) ||
    { echo "35-clients: npm install failed:"; tail -20 "$WORK/npm.log"; exit 1; }
fi
cp tests/clients/clients.mjs "$NODE_DIR/clients.mjs"

# start_server LOG ARGS...: starts t5serve on a free loopback port and waits for /ready; sets
# PORT_OUT and PID_OUT. A port taken between the probe and the bind is tried again with another.
start_server() {
  local log=$1 try; shift
  for try in 1 2 3; do
    PORT_OUT=$(/usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    T5SERVE_API_KEY=$KEY "$BUILD/t5serve" --host 127.0.0.1 --port "$PORT_OUT" "$@" >"$log" 2>&1 &
    PID_OUT=$!
    for _ in $(seq 600); do
      curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT_OUT/ready" 2>/dev/null && return 0
      kill -0 $PID_OUT 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 $PID_OUT 2>/dev/null; then
      echo "35-clients: t5serve $* is not ready after 60 s; its log:"; tail -20 "$log"; return 1
    fi
    wait $PID_OUT || true
    grep -q "Address already in use" "$log" || { echo "35-clients: t5serve $* exited; its log:"; tail -20 "$log"; return 1; }
  done
  echo "35-clients: no free port after 3 tries"; return 1
}
KEY=clients-test-key
PID=; EPID=
trap 'kill -TERM $PID $EPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
start_server "$WORK/server.log" --model "$MODEL" --model-name t5-tiny
PORT=$PORT_OUT PID=$PID_OUT
start_server "$WORK/embed-server.log" --model "$FIXTURES/models/st5-tiny"
EPORT=$PORT_OUT EPID=$PID_OUT
node "$NODE_DIR/clients.mjs" "http://127.0.0.1:$PORT" "$KEY" t5-tiny "$GOLDEN" "http://127.0.0.1:$EPORT" || {
  echo "35-clients: the servers' logs:"; tail -20 "$WORK/server.log" "$WORK/embed-server.log"; exit 1
}
kill -TERM $PID $EPID
wait $PID # both exit 0 (LeakSanitizer has checked under ASan)
wait $EPID
trap - EXIT
