"""Prometheus metrics of the aggregator (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS = Counter(
    "lookout_aggregator_events_total",
    "Entity events handled, by outcome (changed, unchanged: duplicate/stale/no-op, unusable)",
    ["outcome"],
)
ANNOUNCEMENTS = Counter(
    "lookout_aggregator_counts_changed_total",
    "counts.changed publishes, by outcome (published, unroutable, failed)",
    ["outcome"],
)
