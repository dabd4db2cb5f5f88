#!/bin/bash
# `t5 generate` end to end (tokenizer + engine) against transformers' goldens:
# t5-tiny-pegasus texts -> greedy ids and text, beam4 sequences (WordPiece model:
# [CLS] start / [SEP] eos); t5-tiny-gated and t5-tiny-relu `--input ids` -> greedy,
# beam4, penalties and min_new ids; bad inputs give clear errors and exit codes.
# Also `t5 random-model` writes a checkpoint the engine loads (odd shapes, bf16/f16).
# Run time: about 5 s (normal build), 30 s under ASan.
# asan: yes
set -eu
T5="$BUILD/t5"
M="$FIXTURES/models"
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }

# golden expectations, one line per input
$PY - "$M" "$WORK" <<'EOF'
import json, sys
m, w = sys.argv[1], sys.argv[2]
g = json.load(open(f"{m}/t5-tiny-pegasus.golden.json"))
with open(f"{w}/peg.txt", "w") as f, open(f"{w}/peg.greedy", "w") as a, open(f"{w}/peg.text", "w") as t, open(f"{w}/peg.beam", "w") as b:
    for c in g["cases"]:
        f.write(c["text"] + "\n")
        a.write(" ".join(map(str, c["greedy"]["ids"])) + "\n")
        t.write(c["greedy"]["text"] + "\n")
        for s in c["beam4"]["sequences"]:
            b.write(" ".join(map(str, s)) + "\n")
for name in ("t5-tiny-gated", "t5-tiny-relu"):
    g = json.load(open(f"{m}/{name}.golden.json"))
    files = {k: open(f"{w}/{name}.{k}", "w") for k in ("in", "greedy", "beam", "pen", "min")}
    for c in g["cases"]:
        files["in"].write(" ".join(map(str, c["input_ids"])) + "\n")
        files["greedy"].write(" ".join(map(str, c["greedy"]["ids"])) + "\n")
        for s in c["beam4"]["sequences"]:
            files["beam"].write(" ".join(map(str, s)) + "\n")
        files["pen"].write(" ".join(map(str, c["greedy_penalties"]["ids"])) + "\n")
        files["min"].write(" ".join(map(str, c["greedy_min_new"]["ids"])) + "\n")
EOF

# T5 PEGASUS: text in, ids and text out
"$T5" generate --model "$M/t5-tiny-pegasus" --max-new-tokens 24 --format ids < "$WORK/peg.txt" > "$WORK/out" \
  || fail "pegasus greedy ids"
diff "$WORK/peg.greedy" "$WORK/out" || fail "pegasus greedy ids differ from transformers"
"$T5" generate --model "$M/t5-tiny-pegasus" --max-new-tokens 24 < "$WORK/peg.txt" > "$WORK/out" || fail "pegasus text"
diff "$WORK/peg.text" "$WORK/out" || fail "pegasus greedy text differs from the golden"
"$T5" generate --model "$M/t5-tiny-pegasus" --max-new-tokens 24 --num-beams 4 --num-return-sequences 4 \
  --early-stopping --format ids < "$WORK/peg.txt" > "$WORK/out" || fail "pegasus beam"
diff "$WORK/peg.beam" "$WORK/out" || fail "pegasus beam4 sequences differ from transformers"
echo "pegasus: $(wc -l < "$WORK/peg.txt") texts, greedy ids + text and beam4 exact"

for name in t5-tiny-gated t5-tiny-relu; do
  G=(generate --model "$M/$name" --max-new-tokens 24 --input ids --format ids)
  "$T5" "${G[@]}" < "$WORK/$name.in" > "$WORK/out"; diff "$WORK/$name.greedy" "$WORK/out" || fail "$name greedy"
  "$T5" "${G[@]}" --num-beams 4 --num-return-sequences 4 --early-stopping < "$WORK/$name.in" > "$WORK/out"
  diff "$WORK/$name.beam" "$WORK/out" || fail "$name beam4"
  "$T5" "${G[@]}" --repetition-penalty 1.3 --no-repeat-ngram-size 3 < "$WORK/$name.in" > "$WORK/out"
  diff "$WORK/$name.pen" "$WORK/out" || fail "$name penalties"
  "$T5" "${G[@]}" --min-new-tokens 16 < "$WORK/$name.in" > "$WORK/out"
  diff "$WORK/$name.min" "$WORK/out" || fail "$name min_new_tokens"
  echo "$name: greedy, beam4, penalties, min_new exact"
done

# numeric edge cases (issue 17). A sampling temperature too small for float32 logits (1e-39, a
# denormal; 0; 1e-6) is greedy, as llama.cpp makes it: transformers' greedy goldens (before: NaN
# logits and the last id every step). top_p 1e-40 keeps the top token: greedy too. A denormal
# repetition_penalty (scores overflow to +inf) and beam sampling at a tiny temperature give ids
# inside the vocabulary, never the all-last-id output of NaN scores.
for name in t5-tiny-gated t5-tiny-relu; do
  G=(generate --model "$M/$name" --max-new-tokens 24 --input ids --format ids)
  for t in 1e-39 0 1e-6; do
    "$T5" "${G[@]}" --do-sample --seed 3 --temperature $t < "$WORK/$name.in" > "$WORK/out"
    diff "$WORK/$name.greedy" "$WORK/out" || fail "$name: sampling at temperature $t is not greedy"
  done
  "$T5" "${G[@]}" --do-sample --seed 3 --top-p 1e-40 < "$WORK/$name.in" > "$WORK/out"
  diff "$WORK/$name.greedy" "$WORK/out" || fail "$name: top_p 1e-40 is not greedy"
  "$T5" "${G[@]}" --repetition-penalty 1e-40 < "$WORK/$name.in" > "$WORK/out.rp"
  "$T5" "${G[@]}" --repetition-penalty 1e-40 --do-sample --seed 2 < "$WORK/$name.in" >> "$WORK/out.rp"
  "$T5" "${G[@]}" --num-beams 4 --do-sample --seed 2 --temperature 1e-39 < "$WORK/$name.in" >> "$WORK/out.rp"
  V=$($PY -c "import json; print(json.load(open('$M/$name/config.json'))['vocab_size'])")
  $PY - "$WORK/out.rp" "$V" <<'EOF' || fail "$name: ids outside the vocabulary or all last ids"
import sys
V = int(sys.argv[2])
for l in open(sys.argv[1]):
    ids = [int(x) for x in l.split()]
    assert ids and all(0 <= i < V for i in ids) and ids != [V - 1] * len(ids), l
EOF
done
echo "tiny temperature / top_p: greedy; denormal repetition_penalty: valid ids"

# length_penalty far from 1 with beams: float32 would overflow len^-100 (before: the search stopped
# with no finished hypothesis and returned 2-token running beams, finish "length"). The reference is
# transformers' BeamHypotheses, which ranks in Python doubles: score = sum_logprobs / len**lp, len =
# the hypothesis' tokens (start token in, eos out: len(ids)), best first; scores beyond float32 are
# reported as -FLT_MAX. With no processors, sum_logprobs is the sum of the returned logprobs.
for name in t5-tiny-gated t5-tiny-relu; do
  for lp in -100 -20 100; do
    "$T5" generate --model "$M/$name" --max-new-tokens 24 --input ids --format json --num-beams 4 \
      --num-return-sequences 4 --length-penalty $lp < "$WORK/$name.in" > "$WORK/lp.json"
    $PY - "$WORK/lp.json" $lp <<'EOF' || fail "$name: length_penalty $lp does not rank as BeamHypotheses"
import json, sys
FLT_MAX = 3.4028234663852886e38
lp = float(sys.argv[2])
for line in open(sys.argv[1]):
    seqs = json.loads(line)["sequences"]
    exp = [sum(s["logprobs"]) / len(s["ids"]) ** lp for s in seqs]
    for s, e in zip(seqs, exp):
        assert s["finish_reason"] == "eos" or len(s["ids"]) == 24, s  # "length" only at max_new_tokens
        want = max(e, -FLT_MAX)
        assert abs(s["score"] - want) <= 1e-4 * abs(want) + 1e-30, (s["score"], want)
    for a, b in zip(exp, exp[1:]):
        assert a >= b - 1e-6 * abs(b), ("not best first", exp)
EOF
  done
done
echo "length_penalty -100 / -20 / 100: BeamHypotheses' ranking"

# JSON output: valid JSON with logprobs <= 0, sampling is reproducible with a seed
"$T5" generate --model "$M/t5-tiny-gated" --format json --do-sample --seed 5 --num-return-sequences 3 \
  <<< "Hello world" > "$WORK/j1"
"$T5" generate --model "$M/t5-tiny-gated" --format json --do-sample --seed 5 --num-return-sequences 3 \
  <<< "Hello world" > "$WORK/j2"
cmp "$WORK/j1" "$WORK/j2" || fail "sampling with a seed is not reproducible"
$PY -c "
import json,sys
o=json.load(open('$WORK/j1'))
assert len(o['sequences'])==3 and o['input_tokens']>0
for s in o['sequences']:
    assert len(s['ids'])==len(s['logprobs'])>0 and all(l<=0 for l in s['logprobs'])
" || fail "json output"

# errors: clear message, non-zero exit, no crash
expect_err() { # $1 expected exit code, $2 text expected in stderr, rest: command
  local want=$1 msg=$2; shift 2
  set +e; "$@" > /dev/null 2> "$WORK/err" < "${STDIN:-/dev/null}"; local rc=$?; set -e
  [ "$rc" = "$want" ] || fail "exit $rc (want $want) for: $* ($(cat "$WORK/err"))"
  grep -q "$msg" "$WORK/err" || fail "no '$msg' in: $(cat "$WORK/err")"
}
expect_err 1 "config.json" "$T5" generate --model "$WORK/nonexistent"
expect_err 2 "usage" "$T5" generate
expect_err 2 "num_return_sequences" "$T5" generate --model "$M/t5-tiny-gated" --num-return-sequences 2
expect_err 2 "top_p" "$T5" generate --model "$M/t5-tiny-gated" --do-sample --top-p 0
expect_err 2 "length_penalty" "$T5" generate --model "$M/t5-tiny-gated" --num-beams 2 --length-penalty -101
expect_err 2 "temperature" "$T5" generate --model "$M/t5-tiny-gated" --do-sample --temperature -1
echo "1 2 999999" > "$WORK/bad"; echo "x y" >> "$WORK/bad"
STDIN="$WORK/bad" expect_err 1 "line 1" "$T5" generate --model "$M/t5-tiny-gated" --input ids --format ids

# random-model: odd shapes (inner != d_model, asymmetric depth, few buckets), reduced precision
for dt in f32 f16 bf16; do
  "$T5" random-model --out "$WORK/rnd-$dt" --vocab 300 --d-model 48 --d-kv 20 --heads 3 --d-ff 100 --layers 3 \
    --decoder-layers 1 --buckets 16 --max-distance 64 --dtype $dt --seed 9 || fail "random-model $dt"
  echo "5 6 7 1" | "$T5" generate --model "$WORK/rnd-$dt" --input ids --format ids --max-new-tokens 5 \
    --min-new-tokens 5 > "$WORK/out" || fail "generate on random $dt model"
  [ "$(wc -w < "$WORK/out")" = 5 ] || fail "random $dt model: expected 5 ids, got $(cat "$WORK/out")"
done
"$T5" random-model --out "$WORK/rnd-relu" --vocab 200 --d-model 32 --d-kv 8 --heads 4 --d-ff 64 --layers 1 \
  --decoder-layers 4 --ff relu --tied --buckets 8 --max-distance 20 || fail "random-model relu"
echo "5 1" | "$T5" generate --model "$WORK/rnd-relu" --input ids --format ids --num-beams 3 > /dev/null \
  || fail "beam on random relu model"
echo "cli: all checks passed"
