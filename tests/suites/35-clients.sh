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

read -r PORT EPORT < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
KEY=clients-test-key
T5SERVE_API_KEY=$KEY "$BUILD/t5serve" --model "$MODEL" --host 127.0.0.1 --port "$PORT" --model-name t5-tiny \
  >"$WORK/server.log" 2>&1 &
PID=$!
T5SERVE_API_KEY=$KEY "$BUILD/t5serve" --model "$FIXTURES/models/st5-tiny" --host 127.0.0.1 --port "$EPORT" \
  >"$WORK/embed-server.log" 2>&1 &
EPID=$!
trap 'kill -TERM $PID $EPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for p in $PORT $EPORT; do
  for _ in $(seq 600); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$p/ready" 2>/dev/null && break
    sleep 0.1
  done
done
node "$NODE_DIR/clients.mjs" "http://127.0.0.1:$PORT" "$KEY" t5-tiny "$GOLDEN" "http://127.0.0.1:$EPORT"
kill -TERM $PID $EPID
wait $PID # both exit 0 (LeakSanitizer has checked under ASan)
wait $EPID
trap - EXIT
