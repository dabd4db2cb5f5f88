#!/bin/bash
# t5serve under load (tests/server/test_load.py): 64 concurrent /generate = goldens in
# shared batches, clients disconnecting mid-stream leave it healthy, SIGTERM during load
# finishes in-flight requests and exits 0, a short drain timeout cancels and exits 0.
# Runs in about 20 s (about 60 s under ASan; both more on a loaded machine).
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_load.py"
