#!/bin/bash
# 62-soak: a short soak (tools/soak.py): SOAK_SECONDS (default 15) of mixed valid and
# invalid requests to every route from 32 threads against the real t5serve on loopback;
# then the goldens still come out, RSS and descriptors are back at the baseline, every
# status was a designed one and SIGTERM exits 0. Under ASan too (leaks at exit count).
# The long run: `make soak SOAK_SECONDS=600`. Run time: about 30 s per build.
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
# under ASan, freed memory sits in its quarantine: RSS is reported, leaks are judged by
# LeakSanitizer when the server exits
rss=(); case "$BUILD" in *asan*) rss=(--no-rss-check);; esac
exec /usr/bin/python3 "$(dirname "$0")/../../tools/soak.py" --seconds "${SOAK_SECONDS:-15}" --threads 32 \
  --build "$BUILD" --fixtures "$FIXTURES" --work "$WORK" "${rss[@]}"
