#!/bin/bash
# 65-hardening: request validation edge cases and start-up errors (tests/server/test_hardening.py):
# 1e-50 parameters (0 as floats) -> 400, a tiny temperature samples greedily (transformers
# goldens), `details` with `stop` (tokens concatenate to text), the truncate bound, and
# start-up errors (missing folder, no config.json, tokenizer larger than the vocabulary,
# port in use before loading). Run time: about 10 s.
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_hardening.py"
