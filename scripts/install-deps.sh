#!/bin/sh
# Installs, with apt-get, the Debian 12 packages t5serve needs; does nothing when they are all
# there already. Needs root.
# usage: scripts/install-deps.sh [serve|test]
#   serve: building and serving build/t5serve (`make run`): make, gcc, the four libraries, and
#          curl to talk to it; 74 packages, 74 MB to download on a bare Debian 12 (README)
#   test:  serve's, plus what `make`, `make test` and `make bench` use: the tools, the unit
#          tests (Check), the references the tests compare with (SentencePiece, jieba, torch),
#          clang for the fuzzers, clang-format, nginx, the corpus packages, wrk and gnuplot
#          (the default)
set -eu
SERVE="make gcc libc6-dev libopenblas-dev libjansson-dev libmicrohttpd-dev libuv1-dev zlib1g-dev curl"
TEST="g++ pkg-config check clang libclang-rt-14-dev clang-format ca-certificates python3
 python3-numpy python3-sentencepiece libsentencepiece-dev sentencepiece python3-jieba
 python3-yaml python3-torch python3-protobuf nginx-light fortunes-zh manpages-zh xz-utils
 wrk gnuplot-nox libsimde-dev"
case "${1:-test}" in
  serve) PKGS=$SERVE ;;
  test) PKGS="$SERVE $TEST" ;;
  *) echo "usage: scripts/install-deps.sh [serve|test]" >&2; exit 2 ;;
esac
# Node and npm for tests/suites/35-clients.sh (the openai and @huggingface/inference
# clients): Debian's, unless a node is on the PATH already (e.g. NodeSource's, whose
# nodejs package carries npm and conflicts with Debian's npm)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
