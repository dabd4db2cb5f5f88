#!/bin/bash
# 55-container: builds the real container image from the Dockerfile with podman (offline base
# image from scripts/container-env.sh, apt-get from Debian's mirror inside the build),
# checks what the image declares (non-root user, HEALTHCHECK on `t5serve --probe`, EXPOSE,
# the model VOLUME, no compiler inside), then runs it (--network host --init --read-only) with
# the t5-tiny-gated fixture mounted as its model: waits for /ready, checks /tokenize against
# SentencePiece's ids and /generate against transformers' greedy ids (the fixture goldens),
# runs the HEALTHCHECK, stops it with SIGTERM and checks that it drained and exited 0.
# When models/default exists it is baked into the image and served once too (/ready, /tokenize).
# Skipped (exit 77, with the reason) only where the environment cannot run containers: podman
# cannot be installed, cannot set up its storage or base image, or cannot start a container from
# that base image (e.g. no /dev/fuse or no user namespaces inside another container). A failing
# build of the Dockerfile or a failing check of the image is a failure, never a skip.
# Run time: about 2 minutes the first time on 2 cores (base image, apt layers), 30-60 s after
# (podman's layer cache in $T5SERVE_PODMAN_DIR, default /var/tmp/t5serve-podman).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${FIXTURES:=tests/fixtures}" "${WORK:=$(mktemp -d)}"
PODDIR=${T5SERVE_PODMAN_DIR:-/var/tmp/t5serve-podman}
ENVTOOL=scripts/container-env.sh
FIX_MODEL=$(cd "$FIXTURES/models/t5-tiny-gated" && pwd)
GOLDEN=$FIXTURES/models/t5-tiny-gated.golden.json
PY=/usr/bin/python3
IMAGE=localhost/t5serve:test
NAME=t5serve-test-$$

skip() { # $1 log of what failed, $2 the reason: prints the log, then the reason last
  tail -n 20 "$1"; echo "55-container: skipped: $2"; exit 77
}
if ! out=$("$ENVTOOL" "$PODDIR" 2> "$WORK/container-env.err"); then
  command -v podman > /dev/null ||
    skip "$WORK/container-env.err" "podman is not installed and could not be installed here"
  skip "$WORK/container-env.err" "podman cannot set up its storage or base image here (container-env.sh failed)"
fi
eval "$out"
podman run --rm --network host --pull=never docker.io/library/debian:bookworm-slim true \
  > "$WORK/probe.log" 2>&1 ||
  skip "$WORK/probe.log" "podman cannot start a container here (e.g. no /dev/fuse, no user namespaces)"
echo "55-container: $(podman --version), storage in $PODDIR"

cleanup() {
  # -v: also the anonymous volume made for the image's VOLUME
  for c in "$NAME" "$NAME-default"; do podman rm -f -v -i -t 0 "$c" > /dev/null 2>&1 || true; done
  # build layers unused for 2 hours (the cache of this session's builds stays)
  podman image prune -f --filter until=2h > /dev/null 2>&1 || true
}
trap cleanup EXIT

# The build context: only what the Dockerfile copies, and a model at models/default
# (the repository's default model, or the fixture while models/default does not exist).
CTX=$WORK/ctx
mkdir -p "$CTX/models"
cp Dockerfile .dockerignore "$CTX/"
# every source the Dockerfile copies from the context (COPY lines without --from, but the model)
for src in $(awk '$1 == "COPY" && !/--from/ { i = 2; while ($i ~ /^--/) i++; for (; i < NF; i++) print $i }' \
             Dockerfile | grep -v MODEL); do
  mkdir -p "$CTX/$(dirname "$src")"
  cp -r "${src%/}" "$CTX/$(dirname "$src")/"
done
if [ -f models/default/config.json ]; then
  cp -r models/default "$CTX/models/default"; BAKED=repo
else
  cp -r "$FIX_MODEL" "$CTX/models/default"; BAKED=fixture
fi
chmod -R u+w "$CTX"
t0=$SECONDS
if ! podman build --format docker --network host --pull=never -t "$IMAGE" "$CTX" > "$WORK/build.log" 2>&1; then
  echo "55-container: podman build failed:"; tail -n 40 "$WORK/build.log"; exit 1
fi
echo "55-container: image built in $((SECONDS - t0)) s ($BAKED model baked in)," \
     "$(podman image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

# What the image declares.
podman image inspect "$IMAGE" > "$WORK/image.json"
$PY - "$WORK/image.json" <<'EOF'
import json, sys
img = json.load(open(sys.argv[1]))[0]
cfg = img["Config"]
user = cfg.get("User", "")
assert user and user.split(":")[0] not in ("0", "root"), "image runs as root: %r" % user
hc = img.get("Healthcheck") or cfg.get("Healthcheck") or {}
assert hc.get("Test", [])[1:] == ["/usr/local/bin/t5serve", "--probe"], "HEALTHCHECK: %r" % hc
assert "8080/tcp" in (cfg.get("ExposedPorts") or {}), "EXPOSE 8080 missing"
assert "/opt/t5serve/models" in (cfg.get("Volumes") or {}), "model VOLUME missing"
env = dict(e.split("=", 1) for e in cfg.get("Env", []))
assert env.get("T5SERVE_MODEL") == "/opt/t5serve/models/default", env
print("55-container: image: user %s, HEALTHCHECK %s, EXPOSE %s, VOLUME %s" %
      (user, " ".join(hc["Test"][1:]), ",".join(cfg["ExposedPorts"]), ",".join(cfg["Volumes"])))
EOF
if podman run --rm --network host --entrypoint /bin/sh "$IMAGE" -c \
     'command -v gcc || command -v cc || command -v curl || ls /usr/include/jansson.h' 2>/dev/null; then
  echo "55-container: the runtime image holds build tools or headers"; exit 1
fi

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
wait_ready() { # $1 container: waits up to 60 s for /ready
  for _ in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "$URL/ready" 2>/dev/null && return 0
    [ "$(podman inspect "$1" --format '{{.State.Running}}')" = true ] || break
    sleep 0.2
  done
  echo "55-container: $1 never became ready; its log:"; podman logs "$1" 2>&1 | tail -n 30; return 1
}

# The fixture model on the volume, read-only root file system, non-root user.
podman run -d --name "$NAME" --network host --init --read-only \
  -v "$FIX_MODEL:/opt/t5serve/models/default:ro" \
  -e T5SERVE_HOST=127.0.0.1 -e T5SERVE_PORT="$PORT" -e T5SERVE_DRAIN_TIMEOUT_MS=20000 \
  "$IMAGE" > /dev/null 2> "$WORK/podman.err" || { cat "$WORK/podman.err"; exit 1; }
wait_ready "$NAME"
echo "55-container: $NAME ready on :$PORT as uid $(podman exec "$NAME" id -u)"

curl -fsS --max-time 30 -H 'Content-Type: application/json' \
  -d '{"text":"Hello world"}' "$URL/tokenize" > "$WORK/tok.json"
curl -fsS --max-time 60 -H 'Content-Type: application/json' \
  -d '{"text":"中文分词测试：今天天气很好。","max_new_tokens":24,"details":true}' \
  "$URL/generate" > "$WORK/gen.json"
$PY - "$GOLDEN" "$WORK/tok.json" "$WORK/gen.json" <<'EOF'
import json, sys
cases = {c["text"]: c for c in json.load(open(sys.argv[1], encoding="utf-8"))["cases"]}
tok = json.load(open(sys.argv[2]))
want = cases["Hello world"]["input_ids"]
assert tok["ids"] == want, "/tokenize ids %r != SentencePiece's %r" % (tok["ids"], want)
gen = json.load(open(sys.argv[3]))
want = cases["中文分词测试：今天天气很好。"]["greedy"]["ids"]
got = [t["id"] for t in gen["tokens"]]
assert got in (want, [i for i in want if i != 1]), "/generate ids %r != transformers' %r" % (got, want)
print("55-container: /tokenize ids %s and /generate ids (%d tokens, text %r) match the goldens"
      % (tok["ids"], len(got), gen["text"]))
EOF

# The image's HEALTHCHECK (podman runs the probe inside the container).
podman healthcheck run "$NAME" 2> "$WORK/hc.err" \
  || { echo "55-container: HEALTHCHECK failed"; cat "$WORK/hc.err"; exit 1; }
echo "55-container: HEALTHCHECK (t5serve --probe) passed"

# SIGTERM (the image's STOPSIGNAL) while a generation is in flight (16 copies of the longest
# golden text in one request: about a second of work): it must finish right, then the server
# exits 0 well before podman's SIGKILL.
$PY - "$GOLDEN" > "$WORK/long.json" <<'EOF'
import json, sys
c = max(json.load(open(sys.argv[1], encoding="utf-8"))["cases"], key=lambda c: len(c["input_ids"]))
print(json.dumps({"text": [c["text"]] * 16, "max_new_tokens": 24, "details": True}))
EOF
curl -sS --max-time 60 -o "$WORK/long.out" -w '%{http_code}' -d @"$WORK/long.json" "$URL/generate" \
  > "$WORK/long.code" &
CURL=$!
sleep 0.3
t0=$SECONDS
podman stop -t 25 "$NAME" > /dev/null 2>> "$WORK/podman.err"
wait $CURL || true
code=$(podman inspect "$NAME" --format '{{.State.ExitCode}}')
echo "55-container: stopped with SIGTERM in $((SECONDS - t0)) s, exit code $code;" \
     "its log: $(podman logs "$NAME" 2>&1 | grep -o 'draining (in flight: [0-9]*' | head -n 1))"
[ "$code" = 0 ] || { echo "55-container: exit code $code after SIGTERM"; podman logs "$NAME" 2>&1 | tail -n 20; exit 1; }
$PY - "$GOLDEN" "$WORK/long.code" "$WORK/long.out" <<'EOF'
import json, sys
c = max(json.load(open(sys.argv[1], encoding="utf-8"))["cases"], key=lambda c: len(c["input_ids"]))
code = open(sys.argv[2]).read().strip()
assert code == "200", "the generation in flight at SIGTERM got HTTP %s" % code
res = json.load(open(sys.argv[3]))["results"]
want = c["greedy"]["ids"]
assert len(res) == 16
for r in res:
    got = [t["id"] for t in r["tokens"]]
    assert got in (want, [i for i in want if i != 1]), "ids %r != transformers' %r" % (got, want)
print("55-container: the 16 x %d-token generation in flight at SIGTERM finished with the golden ids"
      % len(c["input_ids"]))
EOF

if [ "$BAKED" = repo ]; then
  podman run -d --name "$NAME-default" --network host --init --read-only \
    -e T5SERVE_HOST=127.0.0.1 -e T5SERVE_PORT="$PORT" "$IMAGE" > /dev/null 2>> "$WORK/podman.err"
  wait_ready "$NAME-default"
  # The default model's own check file (transformers' greedy outputs of those weights).
  $PY - "$URL" models/default/greedy_check.jsonl <<'EOF'
import json, os, sys, urllib.request
url, path = sys.argv[1], sys.argv[2]
def post(route, body):
    req = urllib.request.Request(url + route, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)
if not os.path.exists(path):
    assert "ids" in post("/tokenize", {"text": "Hello world"})
    print("55-container: the image's default model tokenizes (no greedy_check.jsonl to compare with)")
    sys.exit(0)
cases = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()][:3]
for c in cases:
    tok = post("/tokenize", {"text": c["text"]})["ids"]
    assert tok == c["input_ids"], "default model /tokenize %r != %r" % (tok, c["input_ids"])
    gen = post("/generate", {"text": c["text"], "max_new_tokens": c["max_new_tokens"], "details": True})
    got = [t["id"] for t in gen["tokens"]]
    assert got in (c["ids"], [i for i in c["ids"] if i != 1]), "default model /generate %r != %r" % (got, c["ids"])
print("55-container: the image's default model gives greedy_check.jsonl's ids for %d texts" % len(cases))
EOF
  podman stop -t 25 "$NAME-default" > /dev/null 2>> "$WORK/podman.err"
  code=$(podman inspect "$NAME-default" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { echo "55-container: default-model container exit code $code"; exit 1; }
  echo "55-container: the image's own default model stopped with SIGTERM, exit 0"
fi
echo "55-container: ok"
