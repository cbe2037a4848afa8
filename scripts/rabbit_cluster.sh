# The cluster profile's three RabbitMQ nodes on 127.0.0.1, joined into one cluster as
# RabbitMQ's clustering guide does it on a single machine: distinct node names, ports and
# data folders, one shared Erlang cookie, then `rabbitmqctl join_cluster`. Sourced by
# stack.sh after lib.sh; never run directly.

CLUSTER_BASE="$VAR/rabbitmq"

# The environment of node N. HOME is shared so every node and rabbitmqctl use one cookie.
cluster_node_env() {
  local n="$1" base="$CLUSTER_BASE/node$1"
  export HOME="$CLUSTER_BASE" RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_MNESIA_BASE="$base/mnesia" RABBITMQ_LOG_BASE="$base/log" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$(node_port "$n")" \
    RABBITMQ_DIST_PORT="$(($(node_port "$n") + 1))" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$CLUSTER_BASE/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$base/rabbitmq" RABBITMQ_PID_FILE="$base/rabbitmq.pid" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$CLUSTER_BASE/advanced.config" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -kernel net_ticktime 10"
}

node_up() { (echo >"/dev/tcp/127.0.0.1/$(node_port "$1")") 2>/dev/null; }

# rabbitmqctl (or rabbitmq-queues, ...) against node N.
node_ctl() {
  local n="$1" tool="$2"; shift 2
  ( cluster_node_env "$n"; "$RABBIT_BIN/$tool" -n "$(node_name "$n")" "$@" )
}

write_cluster_config() {
  mkdir -p "$CLUSTER_BASE"
  echo '[].' >"$CLUSTER_BASE/enabled_plugins"
  echo '[].' >"$CLUSTER_BASE/advanced.config"
  [ -f "$CLUSTER_BASE/.erlang.cookie" ] || {
    python3 -c 'import secrets; print(secrets.token_hex(16).upper(), end="")' >"$CLUSTER_BASE/.erlang.cookie"
    chmod 400 "$CLUSTER_BASE/.erlang.cookie"
  }
  local hash
  hash="$(python3 -c 'import base64,hashlib,os,sys; s=os.urandom(4); print(base64.b64encode(s+hashlib.sha256(s+sys.argv[1].encode()).digest()).decode())' "$AMQP_PASSWORD")"
  cat >"$CLUSTER_BASE/definitions.json" <<JSON
{"users": [{"name": "$AMQP_USER", "password_hash": "$hash", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
 "vhosts": [{"name": "$VHOST"}],
 "permissions": [{"user": "$AMQP_USER", "vhost": "$VHOST", "configure": ".*", "write": ".*", "read": ".*"}]}
JSON
  local n
  for n in $(seq "$CLUSTER_NODES"); do
    mkdir -p "$CLUSTER_BASE/node$n/log" "$CLUSTER_BASE/node$n/mnesia"
    cat >"$CLUSTER_BASE/node$n/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$(node_port "$n")
definitions.import_backend = local_filesystem
definitions.local.path = $CLUSTER_BASE/definitions.json
definitions.skip_if_unchanged = true
cluster_partition_handling = pause_minority
log.file.level = warning
CONF
  done
}

# Boot node N (its data folder makes it rejoin its cluster by itself) and wait for AMQP.
start_node() {
  local n="$1" base="$CLUSTER_BASE/node$1"
  node_up "$n" && return 0
  log "starting RabbitMQ node $n on 127.0.0.1:$(node_port "$n")"
  ( cluster_node_env "$n"; setsid "$RABBIT_BIN/rabbitmq-server" >>"$base/log/console.log" 2>&1 & )
  for _ in $(seq 900); do
    node_up "$n" && return 0
    sleep 0.1
  done
  log "RabbitMQ node $n did not start; see $base/log"; return 1
}

node_pid() { cat "$CLUSTER_BASE/node$1/rabbitmq.pid" 2>/dev/null || true; }

start_cluster() {
  write_cluster_config
  local fresh=0 n
  [ -d "$CLUSTER_BASE/node2/mnesia/$(node_name 2)" ] || fresh=1
  start_node 1
  for n in $(seq 2 "$CLUSTER_NODES"); do start_node "$n"; done
  if [ "$fresh" = 1 ]; then
    for n in $(seq 2 "$CLUSTER_NODES"); do
      log "joining node $n to $(node_name 1)"
      node_ctl "$n" rabbitmqctl -q stop_app
      node_ctl "$n" rabbitmqctl -q join_cluster "$(node_name 1)"
      node_ctl "$n" rabbitmqctl -q start_app
    done
  fi
  node_ctl 1 rabbitmqctl -q await_online_nodes "$CLUSTER_NODES" --timeout 120
}

# kill -9: the node dies without a word to its peers or clients.
kill_node() {
  local pid; pid="$(node_pid "$1")"
  [ -n "$pid" ] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

pause_node() { kill -STOP "$(node_pid "$1")"; }

# A node that comes back after its peers declared it down (kill -9 and restart, or a pause
# longer than net_ticktime) can find Mnesia partitioned and keep running on its own view
# of the cluster; pause_minority does not undo that. The partitions guide's recovery is to
# restart the untrusted side: restart node N's app until all nodes run with no partition.
heal_node() {
  local n="$1" status
  for _ in $(seq 30); do
    status="$(node_ctl "$n" rabbitmqctl cluster_status --formatter json 2>/dev/null || true)"
    case "$(printf '%s' "$status" | python3 -c 'import json,sys
try: d = json.load(sys.stdin)
except ValueError: print("down"); raise SystemExit
print("partitioned" if d["partitions"] else "ok" if len(d["running_nodes"]) == int(sys.argv[1]) else "joining")' "$CLUSTER_NODES")" in
      ok) return 0 ;;
      partitioned)
        log "node $n is partitioned from its peers; restarting its app"
        node_ctl "$n" rabbitmqctl -q stop_app || true
        node_ctl "$n" rabbitmqctl -q start_app || true ;;
      *) sleep 2 ;;
    esac
  done
  log "node $n did not rejoin its cluster"; return 1
}

resume_node() { kill -CONT "$(node_pid "$1")"; heal_node "$1"; }

stop_cluster() {
  local n pid
  for n in $(seq "$CLUSTER_NODES"); do
    pid="$(node_pid "$n")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
    log "stopping RabbitMQ node $n"
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid"
  done
  for n in $(seq "$CLUSTER_NODES"); do
    pid="$(node_pid "$n")"
    [ -n "$pid" ] || continue
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$CLUSTER_BASE/node$n/rabbitmq.pid"
  done
}
