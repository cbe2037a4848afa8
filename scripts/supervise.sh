#!/usr/bin/env bash
# Keeps one service of `make run` running: when it exits it is started again after a delay that
# doubles from LOOKOUT_RESTART_MIN_DELAY (1 s) up to LOOKOUT_RESTART_MAX_DELAY (30 s), and falls
# back to the minimum once a run lasted LOOKOUT_RESTART_STABLE_SECONDS (60 s). Each restart is
# logged to stderr and to the service's log. SIGTERM stops the service, then this script.
# Usage: supervise.sh NAME LOGFILE -- COMMAND [ARG...]
set -uo pipefail

name="$1" logfile="$2"
shift 2
[ "${1:-}" = "--" ] && shift
min_delay="${LOOKOUT_RESTART_MIN_DELAY:-1}"
max_delay="${LOOKOUT_RESTART_MAX_DELAY:-30}"
stable="${LOOKOUT_RESTART_STABLE_SECONDS:-60}"

say() {
  printf '\033[1m[lookout:supervise]\033[0m %s\n' "$*" >&2
  printf '%s supervise: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$logfile"
}

child=""
stop() {
  trap - TERM INT
  # Every background job of this shell, not only $child: the signal may arrive between the
  # fork and the assignment.
  local jobs_left
  jobs_left="$(jobs -p)"
  if [ -n "$jobs_left" ]; then
    # shellcheck disable=SC2086
    kill -TERM $jobs_left 2>/dev/null
    wait 2>/dev/null
  fi
  exit 0
}
trap stop TERM INT

delay="$min_delay"
while true; do
  started=$SECONDS
  "$@" >>"$logfile" 2>&1 &
  child=$!
  wait "$child"
  rc=$?
  child=""
  ran=$((SECONDS - started))
  [ "$ran" -ge "$stable" ] && delay="$min_delay"
  say "$name exited with status $rc after ${ran}s; restarting in ${delay}s"
  # Sleep in the background so SIGTERM interrupts the wait at once.
  sleep "$delay" &
  child=$!
  wait "$child"
  child=""
  delay=$((delay * 2))
  [ "$delay" -gt "$max_delay" ] && delay="$max_delay"
done
