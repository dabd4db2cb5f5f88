#!/bin/bash
# t5serve memory (tests/server/test_memory.py): RSS after N mixed requests (generation of
# every kind, streams, tokenize, detokenize, errors, departing clients) within 10% of RSS
# after a warm-up (a burst that fills the batch, then N/10 requests). CI runs N=3000
# (about 30 s); `make soak-server` runs N=10000.
# Not under ASan (its allocator's RSS says nothing about ours; the ASan runs of 30-32
# check leaks instead).
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_memory.py" "${RSS_REQUESTS:-3000}"
