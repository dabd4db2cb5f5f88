#!/bin/bash
# 64-http-strict: HTTP message strictness through raw sockets (tests/server/test_http_strict.py):
# request smuggling (two Content-Length, Content-Length with chunked) -> 400 and close,
# Transfer-Encoding other than chunked -> 501 at once, HTTP/1.1 without Host and NUL in a
# header -> 400, percent-escapes in the path -> 400, an endless chunked body -> 413 at the
# limit, and 1,030 idle sockets never lock a new client out. Reference: RFC 9112. Run time: about 15 s.
# asan: yes
set -eu
[ -d "$FIXTURES/models/t5-tiny-gated" ] || { echo "fixtures missing: $FIXTURES/models/t5-tiny-gated"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/../server/test_http_strict.py"
