#!/usr/bin/env bash
# `make test`: a fresh test stack of its own (never the dev one), then lint, types and every
# test tier, and last the cluster fault tier on a stack of its own (scripts/test_cluster.sh,
# also `make test-cluster`; about three minutes; LOOKOUT_TEST_CLUSTER=0 skips it). The test
# servers are stopped at the end unless LOOKOUT_KEEP_STACK=1.
export LOOKOUT_STACK=test
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

fresh_stack

log "uv lock --check, ruff, mypy"
"$UV" lock --check --quiet
"$UV" run --no-sync ruff check .
"$UV" run --no-sync ruff format --check .
"$UV" run --no-sync mypy

log "pytest: unit, integration, e2e"
"$UV" run --no-sync pytest tests/unit tests/integration tests/e2e "$@"

if [ "${LOOKOUT_TEST_CLUSTER:-1}" = 1 ]; then
  # The test stack's servers are done: free their memory and cores for the cluster.
  [ "${LOOKOUT_KEEP_STACK:-0}" = 1 ] || bash "$ROOT/scripts/stack.sh" stop
  bash "$ROOT/scripts/test_cluster.sh"
fi
