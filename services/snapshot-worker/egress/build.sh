#!/bin/sh
# Builds the egress shim preloaded into ffmpeg/ffprobe (see lookout_egress.c) at "$1".
# Used by scripts/install.sh (into .venv/lib) and by the worker's Dockerfile.
set -eu
out="$1"
src="$(dirname "$0")/lookout_egress.c"
mkdir -p "$(dirname "$out")"
gcc -O2 -Wall -Wextra -shared -fPIC -o "$out.tmp" "$src" -ldl -pthread
mv "$out.tmp" "$out"
