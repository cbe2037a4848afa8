#!/usr/bin/env bash
# Starts and stops the profile's own Postgres, Redis and RabbitMQ on 127.0.0.1, with their
# data under var/<profile>/. Usage: stack.sh start|stop|fresh|env|start-rabbitmq|stop-rabbitmq|
# start-redis|stop-redis|start-postgres|stop-postgres; with LOOKOUT_STACK=cluster also
# kill-node|start-node|pause-node|resume-node N (1..3), and start-rabbitmq|stop-rabbitmq act
# on the whole three-node cluster.
source "$(dirname "$0")/lib.sh"
[ "$PROFILE" != cluster ] || source "$(dirname "$0")/rabbit_cluster.sh"

# Postgres runs as the `postgres` user when we are root; that user must be able to reach
# var/, so give the folders on the way "search" (x) permission, nothing more.
grant_traverse() {
  [ "$(id -u)" -eq 0 ] || return 0
  local d="$1"
  while [ "$d" != "/" ]; do
    runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
    d="$(dirname "$d")"
  done
}

start_postgres() {
  mkdir -p "$VAR/postgres" "$PG_RUN"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$VAR/postgres"; fi
  grant_traverse "$VAR/postgres"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initialising Postgres in $PG_DATA"
    local pwfile="$PG_RUN/pwfile"
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    [ "$(id -u)" -ne 0 ] || chown postgres "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "starting Postgres on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$VAR/postgres/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_RUN -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on}" start >/dev/null
  fi
  if ! as_pg "$PG_BIN/psql" -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_pg "$PG_BIN/createdb" -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" "$DB_NAME"
  fi
}

stop_postgres() {
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    log "stopping Postgres"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
}

start_redis() {
  mkdir -p "$VAR/redis"
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  # The dev profile keeps its data across runs; the test profile needs none.
  local save=(--save "60 1")
  [ "$PROFILE" = dev ] || save=(--save "")
  # Test stacks let tests stall Redis for real (DEBUG SLEEP), from loopback only; Redis 7
  # refuses DEBUG unless told (older versions allow it and do not know the option).
  local debug=()
  if [ "$PROFILE" != dev ] && redis-server --version | grep -q ' v=[7-9]'; then
    debug=(--enable-debug-command local)
  fi
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" --daemonize yes \
    --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log" "${save[@]}" "${debug[@]}" \
    --protected-mode yes
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "Redis did not start; see $VAR/redis/redis.log"; return 1
}

stop_redis() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "stopping Redis"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

rabbit_env() {
  local base="$VAR/rabbitmq"
  export HOME="$base" RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_MNESIA_BASE="$base/mnesia" \
    RABBITMQ_LOG_BASE="$base/log" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
    RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$base/rabbitmq" RABBITMQ_PID_FILE="$base/rabbitmq.pid" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

rabbit_up() { (echo >"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null; }

start_rabbitmq() {
  rabbit_up && return 0
  local base="$VAR/rabbitmq"
  mkdir -p "$base/log" "$base/mnesia"
  echo '[].' >"$base/enabled_plugins"
  echo '[].' >"$base/advanced.config"
  # The user and vhost come from a definitions file at boot, so no rabbitmqctl call is
  # needed. RabbitMQ's hash: base64(salt + sha256(salt + password)), 4-byte salt.
  local hash
  hash="$(python3 -c 'import base64,hashlib,os,sys; s=os.urandom(4); print(base64.b64encode(s+hashlib.sha256(s+sys.argv[1].encode()).digest()).decode())' "$AMQP_PASSWORD")"
  cat >"$base/definitions.json" <<JSON
{"users": [{"name": "$AMQP_USER", "password_hash": "$hash", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
 "vhosts": [{"name": "$VHOST"}],
 "permissions": [{"user": "$AMQP_USER", "vhost": "$VHOST", "configure": ".*", "write": ".*", "read": ".*"}]}
JSON
  cat >"$base/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
definitions.import_backend = local_filesystem
definitions.local.path = $base/definitions.json
definitions.skip_if_unchanged = false
log.file.level = warning
CONF
  log "starting RabbitMQ on 127.0.0.1:$AMQP_PORT"
  ( rabbit_env; setsid "$RABBIT_BIN/rabbitmq-server" >"$base/log/console.log" 2>&1 & )
  for _ in $(seq 600); do
    if rabbit_up; then
      # The port opens before the node has finished booting (definitions, vhost, queues):
      # wait for the boot itself, so a client never meets a half-started broker.
      ( rabbit_env; timeout 60 "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" await_startup \
          >/dev/null 2>&1 ) || log "rabbitmqctl await_startup did not answer; going on"
      return 0
    fi
    sleep 0.1
  done
  log "RabbitMQ did not start; see $base/log"; return 1
}

stop_rabbitmq() {
  local pidfile="$VAR/rabbitmq/rabbitmq.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping RabbitMQ"
    kill "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  # epmd is shared by every Erlang node on the machine: stop it only when none is left.
  if command -v epmd >/dev/null && ! epmd -names 2>/dev/null | grep -q '^name '; then
    epmd -kill >/dev/null 2>&1 || true
  fi
}

if [ "$PROFILE" = cluster ]; then
  start_rabbitmq() { start_cluster; }
  stop_rabbitmq() { stop_cluster; }
  case "${1:-}" in
    kill-node) kill_node "${2:?node number}"; exit ;;
    start-node) start_node "${2:?node number}"; heal_node "$2"; exit ;;
    pause-node) pause_node "${2:?node number}"; exit ;;
    resume-node) resume_node "${2:?node number}"; exit ;;
    heal-node) heal_node "${2:?node number}"; exit ;;
    # ctl N TOOL ARGS...: rabbitmqctl, rabbitmq-queues, ... against node N.
    ctl) node_ctl "${2:?node number}" "${3:?tool}" "${@:4}"; exit ;;
  esac
fi

case "${1:-}" in
  start) start_postgres; start_redis; start_rabbitmq ;;
  stop) stop_rabbitmq; stop_redis; stop_postgres ;;
  # Test profiles start from empty servers every run: no state leaks between runs.
  fresh)
    case "$PROFILE" in test* | bench | cluster) ;; *) echo "fresh is for test and bench profiles only" >&2; exit 2 ;; esac
    stop_rabbitmq; stop_redis; stop_postgres
    rm -rf "$VAR"
    start_postgres; start_redis; start_rabbitmq ;;
  start-rabbitmq) start_rabbitmq ;;
  # ctl 1 TOOL ARGS...: rabbitmqctl, rabbitmq-queues, ... (the same form as the cluster's).
  ctl) ( rabbit_env; "$RABBIT_BIN/${3:?tool}" -n "$RABBIT_NODE" "${@:4}" ) ;;
  stop-rabbitmq) stop_rabbitmq ;;
  start-redis) start_redis ;;
  stop-redis) stop_redis ;;
  start-postgres) start_postgres ;;
  stop-postgres) stop_postgres ;;
  env) env | grep '^LOOKOUT_' | sort ;;
  *) echo "usage: $0 start|stop|fresh|start-rabbitmq|stop-rabbitmq|start-redis|stop-redis|start-postgres|stop-postgres|env" >&2
     [ "$PROFILE" != cluster ] || echo "       $0 kill-node|start-node|pause-node|resume-node|heal-node N, ctl N TOOL ARGS..." >&2
     exit 2 ;;
esac
