#!/bin/bash
# The default model (models/default, made by tools/pretrain): the folder is complete and at most
# 40 MB; `t5 tokenize` gives the input ids SentencePiece gave when the model was trained; and
# `t5 generate` (greedy, float32 from the bfloat16 file) reproduces exactly the greedy ids that
# transformers 5.17 computed from the same exported weights for the inputs of greedy_check.jsonl,
# from text and from ids. Run time: about 5 s (20 s under ASan).
# asan: yes
set -eu
M=models/default
PY=/usr/bin/python3
for f in config.json model.safetensors spiece.model greedy_check.jsonl README.md; do
  [ -s "$M/$f" ] || { echo "models/default/$f is missing"; exit 1; }
done
bytes=$(du -cb "$M"/* | tail -1 | cut -f1)
echo "models/default: $bytes bytes"
[ "$bytes" -le 40000000 ] || { echo "models/default is over 40 MB"; exit 1; }

cd "$WORK"
$PY - "$OLDPWD/$M" <<'EOF'
import json, sys, sentencepiece as spm
m = sys.argv[1]
c = json.load(open(m + "/config.json"))
sp = spm.SentencePieceProcessor(model_file=m + "/spiece.model")
assert c["model_type"] == "mt5" and c["feed_forward_proj"] == "gated-gelu" and c["tie_word_embeddings"] is False, c
assert c["vocab_size"] >= sp.get_piece_size() + 100, "no room for the 100 sentinels"
assert (c["pad_token_id"], c["eos_token_id"], c["decoder_start_token_id"]) == (0, 1, 0)
assert (sp.pad_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2)
cases = [json.loads(l) for l in open(m + "/greedy_check.jsonl")]
assert len(cases) >= 8, "too few greedy checks"
for k, c_ in enumerate(cases):
    assert sp.encode(c_["text"]) + [1] == c_["input_ids"], f"line {k}: Debian's SentencePiece disagrees with the recorded input ids"
news = sorted({c_["max_new_tokens"] for c_ in cases})
for n in news:
    with open(f"texts.{n}", "w") as f, open(f"ids.{n}", "w") as g, open(f"want.{n}", "w") as h:
        for c_ in cases:
            if c_["max_new_tokens"] == n:
                assert "\n" not in c_["text"]
                f.write(c_["text"] + "\n")
                g.write(" ".join(map(str, c_["input_ids"])) + "\n")
                h.write(" ".join(map(str, c_["ids"])) + "\n")
open("news", "w").write(" ".join(map(str, news)) + "\n")
print(f"{len(cases)} greedy checks, max_new_tokens {news}")
EOF

T5="$OLDPWD/$BUILD/t5"
total=0
for n in $(cat news); do
  "$T5" tokenize --model "$OLDPWD/$M" --format ids --eos < texts.$n > tok.$n
  cmp -s tok.$n ids.$n || { echo "t5 tokenize: input ids differ from SentencePiece's"; diff tok.$n ids.$n | head; exit 1; }
  "$T5" generate --model "$OLDPWD/$M" --format ids --max-new-tokens "$n" < texts.$n > got.$n
  cmp -s got.$n want.$n || { echo "t5 generate (text): greedy ids differ from transformers'"; diff got.$n want.$n | head; exit 1; }
  "$T5" generate --model "$OLDPWD/$M" --format ids --input ids --max-new-tokens "$n" < ids.$n > got_ids.$n
  cmp -s got_ids.$n want.$n || { echo "t5 generate (ids): greedy ids differ from transformers'"; diff got_ids.$n want.$n | head; exit 1; }
  total=$((total + $(wc -l < want.$n)))
done
echo "default model: $total inputs, input ids and greedy ids identical to SentencePiece's and transformers'"
