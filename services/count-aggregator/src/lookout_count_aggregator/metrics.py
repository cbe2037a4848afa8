"""Prometheus metrics of the aggregator (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "lookout_aggregator_events_total",
    "Entity events handled, by outcome (changed, unchanged: duplicate/stale/no-op, unusable)",
    ["outcome"],
)
APPLIES = Counter(
    "lookout_aggregator_applies_total",
    "Events applied to the counts by the Lua script, by outcome (applied, duplicate, stale)",
    ["outcome"],
)
APPLY_DURATION = Histogram(
    "lookout_aggregator_apply_duration_seconds",
    "Time of one Lua apply of a batch of events, Redis round trip included",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
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
WAITING_FOR_REDIS = Gauge(
    "lookout_aggregator_waiting_for_redis",
    "1 while applies hold their events because Redis is unreachable, else 0",
)
COUNTS_TRUSTED = Gauge(
    "lookout_counts_trusted",
    "1 while the counts in Redis are under a current epoch (the api serves them), 0 while "
    "Redis lost state and a rebuild is due or running (the api counts in Postgres)",
)
HEALS = Counter(
    "lookout_counts_heals_total",
    "Rebuilds started because Redis lost the counts, by outcome (healed; superseded: Redis "
    "lost state again meanwhile; busy: another rebuild runs; failed)",
    ["outcome"],
)
LAST_HEAL_SECONDS = Gauge(
    "lookout_counts_last_heal_seconds",
    "How long the last rebuild that healed the counts took",
)

for _outcome in ("applied", "duplicate", "stale"):
    APPLIES.labels(_outcome)
for _outcome in ("healed", "superseded", "busy", "failed"):
    HEALS.labels(_outcome)
