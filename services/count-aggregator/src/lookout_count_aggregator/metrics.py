"""Prometheus metrics of the aggregator (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
DRIFT = Gauge(
    "lookout_count_drift",
    "Absolute difference between Redis and Postgres in the last drift check, summed over the "
    "checked scopes; scope is tenant or platform, field the count (tags share streams_tag:*)",
    ["scope", "field"],
)
DRIFT_SCOPES = Gauge(
    "lookout_count_drift_scopes", "Tenants (and the platform) that drifted in the last check"
)
DRIFT_LAST_CHECK = Gauge(
    "lookout_count_drift_last_check_timestamp_seconds", "When the last drift check finished"
)
DRIFT_CHECKS = Counter(
    "lookout_count_drift_checks_total",
    "Drift checks, by outcome (match, drift, failed)",
    ["outcome"],
)
