#!/bin/sh
# Installs, with apt-get, the Debian 12 packages that building, running and testing
# t5serve need; does nothing when they are all there already. Needs root.
set -eu
PKGS="build-essential pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev libuv1-dev zlib1g-dev check
 clang libclang-rt-14-dev curl ca-certificates python3 python3-numpy python3-sentencepiece
 libsentencepiece-dev sentencepiece python3-jieba nginx-light gnuplot-nox valgrind
 fortunes-zh manpages-zh wrk python3-yaml python3-torch
 xz-utils python3-protobuf clang-format"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
