"""Settings of the count aggregator (``LOOKOUT_*`` variables); built once in ``main``."""

from __future__ import annotations

from typing import Literal

from lookout_shared.settings import ServiceSettings
from pydantic import Field

SEVEN_DAYS = 7 * 24 * 3600


class AggregatorSettings(ServiceSettings):
    service_name: str = "count-aggregator"
    # Events are applied in batches: up to this many per Redis round trip, span and ack
    # (one Lua script runs the batch: a few ms of Redis time for the default).
    aggregator_batch: int = Field(default=256, ge=1, le=5000)
    # A batch is taken when full, or this long after its first event came (a trickle of
    # events waits at most this much; under load batches fill while the last one applies).
    aggregator_batch_wait_ms: float = Field(default=2.0, ge=0)
    # Deliveries in flight; raised to the batch size if lower. Several batches' worth keep
    # deliveries streaming in while a batch's script runs in Redis: with only two, the
    # window was full during the script and the consumer sat idle for its length.
    aggregator_prefetch: int = Field(default=2048, ge=1)
    # How long an event id (and a deletion's tombstone) is remembered: a redelivery or a
    # stale event older than this could count again.
    dedupe_ttl_seconds: int = SEVEN_DAYS
    # At most one counts.changed per tenant per this interval.
    counts_debounce_ms: int = 250
    # The drift check: every this many seconds (0: never), a random sample of tenants
    # ("sampled") or every tenant and the platform ("full", one GROUP BY per table).
    drift_check_interval_seconds: float = 300.0
    drift_check_mode: Literal["sampled", "full"] = "sampled"
    drift_check_sample_tenants: int = 20
    # A difference is drift only if it is still there this much later (events in flight).
    drift_check_settle_seconds: float = 2.0
    # Entities a rebuild writes per atomic Redis step.
    rebuild_chunk: int = 1000
    # How often the counts epoch is checked (also at once after Redis comes back): a Redis
    # that lost state (flushed, restarted, failed over) is noticed this soon and rebuilt.
    counts_epoch_check_seconds: float = Field(default=2.0, gt=0)
    # While Redis is unreachable, applies hold their events and retry with exponential
    # backoff up to this long between attempts.
    redis_retry_max_seconds: float = Field(default=5.0, gt=0)
