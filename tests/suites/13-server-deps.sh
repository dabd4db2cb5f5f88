#!/bin/bash
# The server's layering, read from the object files (tests/server/deps.py): no cycle
# among server/*.o by the symbols each uses from the others; scheduler.o uses nothing
# from the HTTP side (http, routes*, sse, reply) and no libmicrohttpd symbol.
# Runs in about 1 s.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/../server/deps.py" "$BUILD"
