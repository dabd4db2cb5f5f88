#!/bin/bash
# `t5 embed` against sentence-transformers 6.0.1 / transformers 5.17 (the t5-enc-tiny and st5-tiny
# goldens: every pooling, every sentence embedding, 1e-4 and cosine >= 0.99999), pipelines built
# from their encoder with sentence-transformers' Pooling / Dense / Normalize semantics, bf16 / f16
# copies, malformed folders (start-up errors with messages); and `t5 random-model --encoder-only
# --shard-size` loads as a sharded T5EncoderModel. See tests/embed_check.py.
# Run time: about 5 s (normal build), 40 s under ASan.
# asan: yes
set -eu
/usr/bin/python3 tests/embed_check.py "$BUILD/t5" "$FIXTURES" "$WORK"
T5="$BUILD/t5"
"$T5" random-model --out "$WORK/rnd-enc" --encoder-only --vocab 300 --d-model 48 --d-kv 20 --heads 3 --d-ff 96 \
  --layers 2 --dtype bf16 --shard-size 40k
[ -f "$WORK/rnd-enc/model.safetensors.index.json" ] && [ -f "$WORK/rnd-enc/model-00002-of-00004.safetensors" ] \
  || { echo "FAIL: random-model --shard-size wrote no shards: $(ls "$WORK/rnd-enc")"; exit 1; }
grep -q T5EncoderModel "$WORK/rnd-enc/config.json"
echo "5 6 1" | "$T5" embed --model "$WORK/rnd-enc" --input ids --pooling none > "$WORK/out"
/usr/bin/python3 -c "
import json; o = json.load(open('$WORK/out'))['token_embeddings']
assert len(o) == 3 and all(len(r) == 48 for r in o), o"
echo "random encoder-only sharded bf16 model: loads and embeds"
