#!/bin/bash
# 63-limits: every configurable request limit at its exact boundary (accepted at the
# limit, refused one past it with the designed status), the header-size bound, and the
# API key's refusals (tests/server/test_limits.py). Run time: about 10 s.
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_limits.py"
