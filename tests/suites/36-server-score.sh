#!/bin/bash
# POST /score on the real build/t5serve over HTTP (tests/server/test_score.py): the golden greedy
# sequences of t5-tiny-gated score to transformers' per-step logprobs (top[0].logit - logsumexp)
# within 1e-4, as ids and as text; a target text gets </s> appended (transformers' label ids;
# T5 PEGASUS: [CLS] dropped, [SEP] added); /score = `build/t5 score` value for value; concurrent
# /score + /generate = alone; every error (400 naming the field, 405, 413, 429, encoder-only 400,
# tokenize-only 503).
# Runs in about 15 s (about 60 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-pegasus" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-pegasus"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_score.py"
