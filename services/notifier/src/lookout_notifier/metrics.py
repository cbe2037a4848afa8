"""Prometheus metrics of the notifier (the default registry is process-wide by design)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("notifier_connections", "Open client connections")
EVENTS = Counter("notifier_events_total", "Events fanned out")
FRAMES_SENT = Counter("notifier_frames_sent_total", "Frames written to clients")
SLOW_CLIENTS = Counter("notifier_slow_client_closes_total", "Clients closed with 1013")
REFUSED = Counter("notifier_refused_total", "Connections refused", ["reason"])
