"""Prometheus metrics of the notifier (the default registry is process-wide by design)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("lookout_ws_connections", "Open WebSocket and SSE connections")
EVENTS = Counter("lookout_ws_events_total", "Events fanned out")
FRAMES_SENT = Counter("lookout_ws_frames_sent_total", "Frames written to clients")
SLOW_CLIENTS = Counter("lookout_ws_slow_client_closes_total", "Clients closed with 1013")
EARLY_FRAMES = Counter(
    "lookout_ws_early_frames_total",
    "Rooms whose frame went out before the event's numbering returned, by whether the "
    "numbering confirmed it or it was taken back and sent again (handlers/events.py)",
    ["outcome"],  # confirmed | taken_back
)
REFUSED = Counter("lookout_ws_connections_refused_total", "Connections refused", ["reason"])
WEBHOOK_LOOKUPS = Counter(
    "lookout_webhook_lookups_total",
    "Lookups of an event's tenant's hooks, by where the answer came from",
    ["source"],  # cache | postgres
)
