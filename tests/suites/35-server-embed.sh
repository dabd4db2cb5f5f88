#!/bin/bash
# POST /embed on the real build/t5serve over HTTP (tests/server/test_embed.py): t5-enc-tiny and
# st5-tiny against their goldens (sentence-transformers 6.0.1 / transformers 5.17: every pooling,
# every sentence embedding, 1e-4 and cosine >= 0.99999), text / ids / arrays / pooling none /
# truncate / max_seq_length, every error; a full T5 folder = `t5 embed` bit for bit; concurrent
# /embed + /generate = alone (bit-identical) and the greedy goldens; tokenize-only 503.
# Runs in about 10 s (about 60 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/st5-tiny" ] || { echo "fixtures missing: $FIXTURES/models/st5-tiny"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_embed.py"
