#!/bin/bash
# 61-faults: fault tests of the real t5serve on loopback (tests/server/test_faults.py):
# slow and idle clients against the connection limit, an oversized header, the queue
# overflowing then recovering, broken model folders (truncated safetensors, corrupt
# spiece.model, bad config.json), model.safetensors replaced by rename while serving,
# and error messages that never echo large inputs or paths. Goldens: transformers.
# Run time: about 60 s on the 2-core CI machine.
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_faults.py"
