#!/usr/bin/env bash
# `make bench`: a fresh bench stack of its own (LOOKOUT_STACK=bench), then every benchmark
# module in bench/ (or only those named: `make bench ROWS="aggregator worker"`). Each prints
# its rows as ratios against a baseline measured in the same run and writes
# bench/results/<name>.md.
export LOOKOUT_STACK=bench
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

fresh_stack

rows="${ROWS:-}"
if [ -z "$rows" ]; then
  rows="$(find bench -maxdepth 1 -name 'bench_*.py' -printf '%f\n' | sed 's/^bench_//; s/\.py$//' | sort)"
fi
for row in $rows; do
  log "bench: $row"
  "$UV" run --no-sync python -m "bench.bench_$row"
done
