#!/bin/sh
# Builds the egress shim preloaded into ffmpeg/ffprobe (see lookout_egress.c) at "$1", by
# default into the lib folder of uv's project environment (.venv), where the worker looks.
# Used by scripts/install.sh and by the worker's Dockerfile.
set -eu
out="${1:-${UV_PROJECT_ENVIRONMENT:-.venv}/lib/lookout_egress.so}"
src="$(dirname "$0")/lookout_egress.c"
mkdir -p "$(dirname "$out")"
gcc -O2 -Wall -Wextra -shared -fPIC -o "$out.tmp" "$src" -ldl -pthread
mv "$out.tmp" "$out"
