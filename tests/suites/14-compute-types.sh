#!/bin/bash
# Compute types and teacher-forced scoring through the real binaries:
# `t5 score` per-token logprobs of the golden greedy sequences equal transformers' (the
# greedy token's logit - logsumexp, $FIXTURES/models/*.golden.json) within 1e-4 and sum to
# the sequence log-likelihood; a reference type equal to the scored one agrees everywhere
# with KL 0; `t5 generate --compute-type float32` gives the golden ids and every type loads
# and generates on every fixture; t5serve with T5SERVE_COMPUTE_TYPE=int8 answers /generate
# as `t5 generate --compute-type int8` does and /info reports it, and with --int8-float none
# (and T5SERVE_INT8_A16=none) as `t5 score` with those options; bad values and lines give
# clear errors.
# Run time: about 10 s (normal build), 40 s under ASan.
# asan: yes
set -eu
T5="$BUILD/t5"
M="$FIXTURES/models"
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }

for name in t5-tiny-gated t5-tiny-relu; do
  $PY - "$M/$name.golden.json" "$WORK/$name" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))
with open(sys.argv[2] + ".pairs", "w") as p, open(sys.argv[2] + ".in", "w") as i, open(sys.argv[2] + ".want", "w") as w:
    for c in g["cases"]:
        gr = c["greedy"]
        p.write(" ".join(map(str, c["input_ids"])) + "\t" + " ".join(map(str, gr["ids"])) + "\n")
        i.write(" ".join(map(str, c["input_ids"])) + "\n")
        w.write(" ".join(map(str, gr["ids"])) + "\n")
        json.dump([s["top"][0][1] - s["logsumexp"] for s in gr["steps"]], open(sys.argv[2] + ".lp%d" % g["cases"].index(c), "w"))
EOF
  for ct in auto float32; do
    "$T5" score --model "$M/$name" --input ids --compute-type $ct < "$WORK/$name.pairs" > "$WORK/out" \
      2> "$WORK/err" || fail "$name score $ct: $(cat "$WORK/err")"
    $PY - "$WORK/out" "$WORK/$name" <<'EOF' || fail "$name $ct: t5 score differs from transformers"
import json, math, sys
for k, line in enumerate(open(sys.argv[1])):
    o = json.loads(line)
    want = json.load(open(sys.argv[2] + ".lp%d" % k))
    got = [t["logprob"] for t in o["tokens"]]
    assert o["n"] == len(want) == len(got), (k, o["n"], len(want))
    err = max(abs(a - b) for a, b in zip(got, want))
    assert err <= 1e-4, (k, err)
    assert abs(o["logprob"] - sum(got)) <= 1e-4 * len(got), (k, o["logprob"], sum(got))
EOF
    grep -q "log-likelihood" "$WORK/err" || fail "$name: no summary on stderr"
  done
  # the reference type equal to the scored one: full agreement, KL 0
  "$T5" score --model "$M/$name" --input ids --compute-type int8 --ref-compute-type int8 < "$WORK/$name.pairs" \
    > "$WORK/out" 2> "$WORK/err" || fail "$name score vs itself"
  $PY -c "
import json, sys
for l in open('$WORK/out'):
    o = json.loads(l); assert o['agree'] == o['n'] and o['kl'] == 0 and o['ref_logprob'] == o['logprob'], o
" || fail "$name: int8 against int8 is not full agreement"
  grep -q "argmax agreement 1.0000" "$WORK/err" || fail "$name: summary $(cat "$WORK/err")"
  # generation under every compute type
  "$T5" generate --model "$M/$name" --input ids --format ids --max-new-tokens 24 --compute-type float32 \
    < "$WORK/$name.in" > "$WORK/out"
  diff "$WORK/$name.want" "$WORK/out" > /dev/null || fail "$name: float32 greedy differs from transformers"
  for opt in "bfloat16" "int8" "int8 --int8-float none" "int8 --int8-float all" "int8 --int8-a16 none" "int8 --int8-a16 wo,qk"; do
    # shellcheck disable=SC2086
    "$T5" generate --model "$M/$name" --input ids --format ids --max-new-tokens 24 --compute-type $opt \
      < "$WORK/$name.in" > "$WORK/out" || fail "$name: generate --compute-type $opt"
    [ "$(wc -l < "$WORK/out")" = "$(wc -l < "$WORK/$name.in")" ] || fail "$name $opt: missing outputs"
  done
  echo "$name: score = transformers' logprobs (auto, float32); every compute type generates"
done
"$T5" generate --model "$M/t5-tiny-pegasus" --max-new-tokens 8 --compute-type int8 <<< "中文" > /dev/null \
  || fail "pegasus int8"
# every class in float on a float16 checkpoint: the matrices as stored, so exact (a float32 one's
# are rounded to bfloat16: test_engine_compute)
"$T5" generate --model "$M/t5-tiny-relu" --input ids --format ids --max-new-tokens 24 --compute-type int8 \
  --int8-float all < "$WORK/t5-tiny-relu.in" > "$WORK/out"
diff "$WORK/t5-tiny-relu.want" "$WORK/out" > /dev/null || fail "int8 with every class in float is not exact"

# text input: the target gets eos; a WordPiece target loses its [CLS]
printf 'Hello world\tHello world\n' | "$T5" score --model "$M/t5-tiny-gated" > "$WORK/out" || fail "text score"
$PY -c "import json; o=json.load(open('$WORK/out')); assert o['tokens'][-1]['id']==1 and o['logprob']<0, o" \
  || fail "text target without eos"
printf '中文\t中文\n' | "$T5" score --model "$M/t5-tiny-pegasus" > "$WORK/out" || fail "pegasus text score"
$PY -c "import json; o=json.load(open('$WORK/out')); assert o['tokens'][0]['id']!=101 and o['tokens'][-1]['id']==102, o" \
  || fail "pegasus target: [CLS] kept or [SEP] missing"

# errors
expect_err() { # $1 expected exit code, $2 text expected in stderr, rest: command
  local want=$1 msg=$2; shift 2
  set +e; "$@" > "$WORK/eout" 2> "$WORK/err" < "${STDIN:-/dev/null}"; local rc=$?; set -e
  [ "$rc" = "$want" ] || fail "exit $rc (want $want) for: $* ($(cat "$WORK/err"))"
  grep -q "$msg" "$WORK/err" || fail "no '$msg' in: $(cat "$WORK/err")"
}
expect_err 2 "compute-type must be auto, float32, bfloat16 or int8" "$T5" generate --model "$M/t5-tiny-gated" \
  --compute-type int4
expect_err 2 "unknown matrix class 'heads'" "$T5" score --model "$M/t5-tiny-gated" --int8-float wo,heads
expect_err 2 "usage" "$T5" score
printf 'no tab here\n1 2\t3 999999\n5 1\t1\n' > "$WORK/bad"
STDIN="$WORK/bad" expect_err 1 "line 1: expected input<TAB>target" "$T5" score --model "$M/t5-tiny-gated" --input ids
grep -q "line 2: id 999999 outside the vocabulary" "$WORK/err" || fail "bad id: $(cat "$WORK/err")"
[ "$(sed -n 3p "$WORK/eout" | cut -c1-11)" = '{"logprob":' ] || fail "a good line after bad ones: $(cat "$WORK/eout")"

# t5serve with T5SERVE_COMPUTE_TYPE=int8: the same answer as t5 generate --compute-type int8
# serve ARGS...: t5serve in the background on a random port ($port, $pid), ready; stop: its end
serve() {
  port=$((20000 + RANDOM % 20000))
  "$BUILD/t5serve" "$@" --host 127.0.0.1 --port $port --log-level warn > "$WORK/srv.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2> /dev/null || true' EXIT
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/ready" > /dev/null 2>&1 && break; sleep 0.1; done
}
stop() {
  kill $pid
  wait $pid 2> /dev/null || true
  trap - EXIT
}
if [ -x "$BUILD/t5serve" ]; then
  T5SERVE_COMPUTE_TYPE=int8 serve --model "$M/t5-tiny-gated"
  got=$(curl -sf "http://127.0.0.1:$port/generate" -d '{"ids": [872, 73, 73, 56, 1], "max_new_tokens": 12}') \
    || fail "t5serve int8 /generate: $(cat "$WORK/srv.log")"
  want=$(echo "872 73 73 56 1" | "$T5" generate --model "$M/t5-tiny-gated" --input ids --max-new-tokens 12 \
    --compute-type int8)
  $PY -c "import json,sys; assert json.loads(sys.argv[1])['text'] == sys.argv[2], sys.argv[1:]" "$got" "$want" \
    || fail "t5serve int8 answer differs from t5 generate --compute-type int8"
  curl -sf "http://127.0.0.1:$port/info" | $PY -c "
import json, sys
i = json.load(sys.stdin)
assert (i['compute_type'], i['int8_float'], i['int8_a16']) == ('int8', 'embed', 'layers'), i" \
    || fail "/info: not compute_type int8, int8_float embed, int8_a16 layers"
  stop
  T5SERVE_COMPUTE_TYPE=int4 "$BUILD/t5serve" --model "$M/t5-tiny-gated" > /dev/null 2> "$WORK/err" \
    && fail "t5serve accepted compute_type int4"
  grep -q "compute_type must be one of" "$WORK/err" || fail "t5serve int4: $(cat "$WORK/err")"
  # key int8_float: the classes t5 generate --int8-float takes; an unknown one stops start-up, named
  serve --model "$M/t5-tiny-relu" --compute-type int8 --int8-float none
  # /score tells the classes apart where a short greedy answer may not: it must be t5 score's with
  # --int8-float none, value for value, and not the default classes'
  got=$(curl -sf "http://127.0.0.1:$port/score" -d '{"ids": [872, 73, 73, 56, 1], "target_ids": [73, 56, 872, 1]}') \
    || fail "t5serve int8_float none /score: $(cat "$WORK/srv.log")"
  for cls in none wo,qk,embed; do
    printf '872 73 73 56 1\t73 56 872 1\n' | "$T5" score --model "$M/t5-tiny-relu" --input ids --compute-type int8 \
      --int8-float $cls > "$WORK/want-$cls"
  done
  $PY -c "
import json, struct, sys
got, none, dflt = json.loads(sys.argv[1]), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
f32 = lambda r: [struct.unpack('f', struct.pack('f', t['logprob']))[0] for t in r['tokens']]  # both print float32s
assert f32(got) == f32(none), (got, none)
assert none['logprob'] != dflt['logprob'], (none, dflt)
" "$got" "$WORK/want-none" "$WORK/want-wo,qk,embed" || fail "t5serve int8_float none: not t5 score --int8-float none's logprobs"
  curl -sf "http://127.0.0.1:$port/info" | $PY -c "import json,sys; assert json.load(sys.stdin)['int8_float'] == 'none'" \
    || fail "/info does not report int8_float none"
  stop
  T5SERVE_INT8_FLOAT=wo,ffn "$BUILD/t5serve" --model "$M/t5-tiny-gated" --compute-type int8 > /dev/null 2> "$WORK/err" \
    && fail "t5serve accepted int8_float wo,ffn"
  grep -q "int8_float: unknown matrix class 'ffn'" "$WORK/err" || fail "t5serve int8_float wo,ffn: $(cat "$WORK/err")"
  # key int8_a16 (here from the environment): the classes with 16-bit activations (default layers),
  # as t5 score's --int8-a16; none: 8-bit activations everywhere, not the default's answer
  T5SERVE_INT8_A16=none serve --model "$M/t5-tiny-relu" --compute-type int8 --int8-float none
  got=$(curl -sf "http://127.0.0.1:$port/score" -d '{"ids": [872, 73, 73, 56, 1], "target_ids": [73, 56, 872, 1]}') \
    || fail "t5serve int8_a16 none /score: $(cat "$WORK/srv.log")"
  printf '872 73 73 56 1\t73 56 872 1\n' | "$T5" score --model "$M/t5-tiny-relu" --input ids --compute-type int8 \
    --int8-float none --int8-a16 none > "$WORK/want-a8"
  $PY -c "
import json, struct, sys
got, a8, a16 = json.loads(sys.argv[1]), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
f32 = lambda r: [struct.unpack('f', struct.pack('f', t['logprob']))[0] for t in r['tokens']]
assert f32(got) == f32(a8), (got, a8)
assert a8['logprob'] != a16['logprob'], (a8, a16)
" "$got" "$WORK/want-a8" "$WORK/want-none" || fail "t5serve int8_a16 none: not t5 score --int8-a16 none's logprobs"
  curl -sf "http://127.0.0.1:$port/info" | $PY -c "import json,sys; i = json.load(sys.stdin); assert i['int8_a16'] == 'none', i" \
    || fail "/info does not report int8_a16 none"
  stop
  "$BUILD/t5serve" --model "$M/t5-tiny-gated" --compute-type int8 --int8-a16 qk,kv > /dev/null 2> "$WORK/err" \
    && fail "t5serve accepted int8_a16 qk,kv"
  grep -q "int8_a16: unknown matrix class 'kv'" "$WORK/err" || fail "t5serve int8_a16 qk,kv: $(cat "$WORK/err")"
  echo "t5serve: T5SERVE_COMPUTE_TYPE=int8 answers as t5 generate --compute-type int8; /info says int8;"
  echo "  --int8-float none and T5SERVE_INT8_A16=none as t5 score's; an unknown class stops start-up with its name"
fi
echo "compute types: all checks passed"
