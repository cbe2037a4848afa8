# Common settings for the local stack. Sourced by the other scripts; never run directly.
# LOOKOUT_STACK picks the profile: "dev" (make run) or "test" (make test). Each profile has
# its own ports, data folder, database, vhost and Redis key space, so a running `make run`
# is never touched by `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${LOOKOUT_STACK:-dev}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
RABBIT_BIN="${RABBIT_BIN:-/usr/lib/rabbitmq/bin}"

case "$PROFILE" in
  dev)  PG_PORT=54320; REDIS_PORT=63790; AMQP_PORT=56720; DB_NAME=lookout;      VHOST=lookout ;;
  # Test and bench servers restart during a run, so their ports sit below Linux's ephemeral
  # range (32768-60999): a client socket lingering in TIME_WAIT can never hold them.
  test) PG_PORT=25432; REDIS_PORT=26379; AMQP_PORT=25672; DB_NAME=lookout_test; VHOST=lookout-test ;;
  bench) PG_PORT=25632; REDIS_PORT=26579; AMQP_PORT=25872; DB_NAME=lookout_bench; VHOST=lookout-bench ;;
  # Extra test stacks (test1..test9) let several suites run side by side on one machine;
  # their ports stay below the bench ones.
  test[1-9])
    n=${PROFILE#test}
    PG_PORT=$((25432 + n * 10)); REDIS_PORT=$((26379 + n * 10)); AMQP_PORT=$((25672 + n * 10))
    DB_NAME=lookout_test; VHOST=lookout-test ;;
  # Three RabbitMQ nodes in one cluster (AMQP ports 25972, 25982, 25992) beside one
  # Postgres and one Redis, for the fault tier (tests/cluster).
  cluster) PG_PORT=25542; REDIS_PORT=26689; AMQP_PORT=25972; DB_NAME=lookout_test; VHOST=lookout-test ;;
  *) echo "unknown LOOKOUT_STACK=$PROFILE (dev|test|bench|test1..test9|cluster)" >&2; exit 2 ;;
esac
DIST_PORT=$((AMQP_PORT + 1))
VAR="$ROOT/var/$PROFILE"
case "$PROFILE" in test* | bench | cluster) PG_FSYNC="${PG_FSYNC:-off}" ;; esac
PG_DATA="$VAR/postgres/data"
PG_RUN="$VAR/postgres/run"
PG_USER=lookout
PG_PASSWORD=lookout
AMQP_USER=lookout
AMQP_PASSWORD=lookout
RABBIT_NODE="lookout-$PROFILE@localhost"

export LOOKOUT_DATABASE_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
export LOOKOUT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export LOOKOUT_AMQP_URL="amqp://$AMQP_USER:$AMQP_PASSWORD@127.0.0.1:$AMQP_PORT/$VHOST"
if [ "$PROFILE" = cluster ]; then
  CLUSTER_NODES=3
  # Node N (1..3) listens on AMQP_PORT + 10*(N-1); its distribution port is one above.
  node_port() { echo $((AMQP_PORT + 10 * ($1 - 1))); }
  node_name() { echo "lookout-cluster-$1@localhost"; }
  # Every service takes the comma-separated list and connects to any live node; a short
  # heartbeat notices a paused node within seconds.
  urls=()
  for n in $(seq "$CLUSTER_NODES"); do
    urls+=("amqp://$AMQP_USER:$AMQP_PASSWORD@127.0.0.1:$(node_port "$n")/$VHOST?heartbeat=4")
  done
  LOOKOUT_AMQP_URL="$(IFS=,; echo "${urls[*]}")"
  export LOOKOUT_AMQP_URL
  unset urls n
fi
export LOOKOUT_REDIS_PREFIX="lookout-$PROFILE:"
export LOOKOUT_STORAGE_DIR="$VAR/snapshots"
export LOOKOUT_MEDIA_DIR="$VAR/media"

# uv: the one on PATH, or the copy scripts/install.sh put in var/tools.
find_uv() { command -v uv || echo "$ROOT/var/tools/bin/uv"; }
UV="$(find_uv)"
export UV_PYTHON_DOWNLOADS=never

log() { printf '\033[1m[lookout:%s]\033[0m %s\n' "$PROFILE" "$*" >&2; }

# Run a command as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Postgres refuses to run as root, so as root it runs as the `postgres` system user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# For test and bench runs: a fresh stack with the migrations applied, stopped again on exit
# unless LOOKOUT_KEEP_STACK=1.
fresh_stack() {
  if [ "${LOOKOUT_KEEP_STACK:-0}" != 1 ]; then
    trap 'bash "$ROOT/scripts/stack.sh" stop' EXIT
  fi
  bash "$ROOT/scripts/stack.sh" fresh
  bash "$ROOT/scripts/migrate.sh"
}
