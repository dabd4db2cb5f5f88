#!/bin/sh
# The README's first command: on a bare Debian 12, as root, installs only what building and
# serving need (scripts/install-deps.sh serve: make, gcc, four libraries, curl), builds build/t5serve
# on every core and serves models/default on :8080 (config/t5serve.conf). Arguments go to
# t5serve, e.g. scripts/serve.sh --port 9000 --model /srv/my-t5.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh serve
exec make run RUN_ARGS="$*"
