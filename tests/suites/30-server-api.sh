#!/bin/bash
# t5serve HTTP API against the references (tests/server/test_api.py): real build/t5serve
# on a free loopback port with t5-tiny-gated; generate (greedy, beam, penalties,
# min_new_tokens, stream) = transformers' golden ids, /tokenize = input_ids goldens,
# /detokenize = SentencePiece's decode, every error status with its JSON body.
# Runs in about 10 s (about 40 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_api.py"
