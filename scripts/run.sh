#!/usr/bin/env bash
# `make run`: the dev stack (Postgres, Redis, RabbitMQ on 127.0.0.1, data in var/dev), the
# migrations, the four services as separate processes, and a demo tenant, admin and stream.
# Ctrl-C stops everything; running it again reuses the data.
export LOOKOUT_STACK=dev
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export LOOKOUT_ENVIRONMENT="${LOOKOUT_ENVIRONMENT:-development}"
export LOOKOUT_DEMO_EMAIL="${LOOKOUT_DEMO_EMAIL:-admin@example.com}"
export LOOKOUT_DEMO_PASSWORD="${LOOKOUT_DEMO_PASSWORD:-lookout-demo-password}"
LOGS="$VAR/logs"
mkdir -p "$LOGS" "$LOOKOUT_MEDIA_DIR" "$LOOKOUT_STORAGE_DIR"

pids=()
shutdown() {
  trap - INT TERM EXIT
  log "stopping the services"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash scripts/stack.sh stop
  exit 0
}
trap shutdown INT TERM EXIT

bash scripts/stack.sh start
bash scripts/migrate.sh

DEMO_VIDEO="$LOOKOUT_MEDIA_DIR/demo.mp4"
if [ ! -f "$DEMO_VIDEO" ]; then
  log "generating the demo video with ffmpeg"
  ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=10" -t 20 \
    -pix_fmt yuv420p "$DEMO_VIDEO"
fi

# Each service runs under scripts/supervise.sh, which restarts it (with backoff) if it exits,
# so one crash never takes the rest of the system down.
for service in api snapshot-worker count-aggregator notifier; do
  bash scripts/supervise.sh "lookout-$service" "$LOGS/$service.log" -- ".venv/bin/lookout-$service" &
  pids+=("$!")
  log "started lookout-$service (log var/dev/logs/$service.log)"
done

".venv/bin/lookout-api" seed-demo --video "$DEMO_VIDEO" >/dev/null
".venv/bin/python" scripts/demo.py
log "operator page: ${LOOKOUT_PUBLIC_URL:-http://127.0.0.1:${LOOKOUT_API_PORT:-8000}}/ui (log in as $LOOKOUT_DEMO_EMAIL)"

log "running; press Ctrl-C to stop"
# Returns only on Ctrl-C (or SIGTERM): a service that exits is restarted by its supervisor.
wait "${pids[@]}" || true
