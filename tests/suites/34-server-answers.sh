#!/bin/bash
# t5serve's HTTP answers byte for byte against tests/data/server_answers.jsonl, recorded
# from the server before issue 11's restructuring, logprobs / scores re-recorded with issue 12's
# kernels (tests/server/test_answers.py): 129
# requests on t5-tiny-gated, t5-tiny-pegasus, a tokenize-only SentencePiece model, the
# default model and an API-key server; status, headers but Date, body.
# Runs in about 5 s (about 30 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_answers.py"
