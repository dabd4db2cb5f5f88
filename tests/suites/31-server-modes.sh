#!/bin/bash
# t5serve configuration and modes through the real binary (tests/server/test_modes.py):
# precedence file < environment < command line, start-up validation, --help, API key
# (401), full queue (429 + Retry-After), tokenize-only service from a bare SentencePiece
# model (= SentencePiece's ids, pieces, n-best; /generate 503), --probe.
# Runs in about 10 s (about 40 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_modes.py"
