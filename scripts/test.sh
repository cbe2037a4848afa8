#!/usr/bin/env bash
# `make test`: a fresh test stack of its own (never the dev one), then lint, types and every
# test tier. The test servers are stopped at the end unless LOOKOUT_KEEP_STACK=1.
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
