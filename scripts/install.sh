#!/usr/bin/env bash
# Installs what is missing, and nothing else: Debian packages for the servers and ffmpeg,
# uv, and the workspace's locked Python environment (.venv). Safe to run again.
source "$(dirname "$0")/lib.sh"

packages=(postgresql postgresql-contrib redis-server rabbitmq-server ffmpeg
  # gcc builds the snapshot worker's egress shim (services/snapshot-worker/egress).
  gcc libc6-dev
  # promtool checks /metrics in the tests; wrk drives the api benchmark.
  prometheus wrk
  # An MQTT broker for the notifier's Home Assistant bridge tests (started per test).
  mosquitto
  # A real RTSP server for the worker's tests: GStreamer's, driven from the system python.
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  # Headless browser for the operator page's tests (driven by Playwright, never downloaded).
  chromium
  $(command -v kubectl >/dev/null || echo kubernetes-client))
# Debian's own python3 needs python3-venv for the uv bootstrap below.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # Debian starts system-wide services from maintainer scripts where it can; we never
  # use those (the stack runs its own servers from var/), so keep them from starting.
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$UV" ]; then
  log "installing uv into var/tools"
  python3 -m venv "$ROOT/var/tools"
  "$ROOT/var/tools/bin/pip" install -q uv
fi

log "syncing the workspace (.venv)"
cd "$ROOT"
"$UV" sync --locked --all-packages --quiet

# The worker refuses to run captures without its egress shim; rebuild it when it is missing
# or older than its source (a new .venv starts without it).
SHIM="$ROOT/.venv/lib/lookout_egress.so"
SHIM_SRC="$ROOT/services/snapshot-worker/egress/lookout_egress.c"
if [ ! -f "$SHIM" ] || [ "$SHIM_SRC" -nt "$SHIM" ]; then
  log "building the egress shim (.venv/lib/lookout_egress.so)"
  sh "$ROOT/services/snapshot-worker/egress/build.sh" "$SHIM"
fi
