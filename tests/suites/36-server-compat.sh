#!/bin/bash
# The OpenAI-compatible (/v1) and TGI-compatible routes over real HTTP
# (tests/server/test_compat.py): answer shapes, errors in each API's shape, and the numbers
# against the fixtures' transformers goldens (greedy ids, log-probabilities and top
# alternatives, presence / frequency penalties predicted from the golden logits), the
# embeddings against /embed. The real client libraries: 35-clients.sh.
# Runs in about 5 s (about 20 s under ASan).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_compat.py"
