"""Settings of the count aggregator (``LOOKOUT_*`` variables); built once in ``main``."""

from __future__ import annotations

from lookout_shared.settings import ServiceSettings

SEVEN_DAYS = 7 * 24 * 3600


class AggregatorSettings(ServiceSettings):
    service_name: str = "count-aggregator"
    # Lua applies are cheap and order-tolerant, so many messages may be in flight at once.
    aggregator_prefetch: int = 64
    # How long an event id (and a deletion's tombstone) is remembered: a redelivery or a
    # stale event older than this could count again.
    dedupe_ttl_seconds: int = SEVEN_DAYS
    # At most one counts.changed per tenant per this interval.
    counts_debounce_ms: int = 250
