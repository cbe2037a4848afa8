#!/usr/bin/env bash
# `make test-cluster`: the fault tier on a fresh three-node RabbitMQ cluster stack of its own
# (LOOKOUT_STACK=cluster) with two replicas of every service; stopped at the end unless
# LOOKOUT_KEEP_STACK=1. About three minutes on two cores.
export LOOKOUT_STACK=cluster
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

fresh_stack

log "pytest: cluster faults"
"$UV" run --no-sync pytest tests/cluster "$@"
