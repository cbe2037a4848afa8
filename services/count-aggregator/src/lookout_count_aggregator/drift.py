"""Compare the counts in Redis with Postgres: the ``check`` command and the periodic check.

Events reach Redis a moment after their rows are committed, so a difference seen once may
be an event in flight. A check therefore looks again after a short settle time and reports
only what differs both times, with the same values.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg
from lookout_shared.count_keys import CountKeys
from lookout_shared.drift_report import DriftReport, encode
from redis.asyncio import Redis

from lookout_count_aggregator import metrics
from lookout_count_aggregator.adapters.postgres_states import grouped_counts
from lookout_count_aggregator.adapters.redis_counts import decode_counts
from lookout_count_aggregator.domain.tally import differences, platform_of

log = logging.getLogger(__name__)

PLATFORM = "platform"


@dataclass(frozen=True)
class Drift:
    scope: str  # a tenant id or "platform"
    field: str
    sql: int
    redis: int


async def compare(
    pool: asyncpg.Pool, redis: Redis, keys: CountKeys, tenants: Sequence[uuid.UUID] | None
) -> list[Drift]:
    """Every count that differs now: of these tenants, or of every tenant and the platform."""
    expected = await grouped_counts(pool, tenants)
    scopes: dict[str, tuple[str, Counter[str]]] = {}
    if tenants is None:
        ids = await pool.fetch("SELECT id FROM tenants")
        for t in {*(r["id"] for r in ids), *expected}:
            scopes[str(t)] = (keys.tenant(t), expected.get(t, Counter()))
        prefix = keys.tenant("")
        async for raw in redis.scan_iter(match=keys.tenant_pattern(), count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            scopes.setdefault(key.removeprefix(prefix), (key, Counter()))
        scopes[PLATFORM] = (keys.platform(), platform_of(expected.values()))
    else:
        for t in tenants:
            scopes[str(t)] = (keys.tenant(t), expected.get(t, Counter()))
    drifts = []
    for scope, (key, want) in sorted(scopes.items()):
        have = decode_counts(await redis.hgetall(key))
        for name, (sql_count, redis_count) in differences(dict(want), have).items():
            drifts.append(Drift(scope, name, sql_count, redis_count))
    return drifts


async def check(
    pool: asyncpg.Pool,
    redis: Redis,
    keys: CountKeys,
    tenants: Sequence[uuid.UUID] | None = None,
    settle_seconds: float = 0.0,
) -> list[Drift]:
    """The counts that differ, and still differ the same way after ``settle_seconds``."""
    drifts = await compare(pool, redis, keys, tenants)
    if not drifts or settle_seconds <= 0:
        return drifts
    await asyncio.sleep(settle_seconds)
    again = set(await compare(pool, redis, keys, tenants))
    return [d for d in drifts if d in again]


def label_of(field: str) -> str:
    """The metric label of a count field: tags are user-chosen, so they share one label."""
    return "streams_tag:*" if field.startswith("streams_tag:") else field


class DriftMonitor:
    """Checks every ``interval`` seconds: a random sample of tenants, or everything."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        keys: CountKeys,
        interval: float,
        mode: Literal["sampled", "full"],
        sample: int,
        settle_seconds: float,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self.interval = interval
        self.mode = mode
        self.sample = sample
        self.settle_seconds = settle_seconds
        self._exported: set[tuple[str, str]] = set()

    async def check_once(self) -> list[Drift]:
        tenants: list[uuid.UUID] | None = None
        if self.mode == "sampled":
            rows = await self._pool.fetch(
                "SELECT id FROM tenants ORDER BY random() LIMIT $1", self.sample
            )
            tenants = [r["id"] for r in rows]
        drifts = await check(self._pool, self._redis, self._keys, tenants, self.settle_seconds)
        self._record(drifts)
        # For the dashboard (operators' page): counts only, no tenant ids.
        report = DriftReport(time.time(), self.mode, len({d.scope for d in drifts}), len(drifts))
        await self._redis.set(self._keys.drift_report(), encode(report))
        metrics.DRIFT_CHECKS.labels(outcome="drift" if drifts else "match").inc()
        if drifts:
            scopes = sorted({d.scope for d in drifts})
            log.warning(
                "counts drift from Postgres; run `lookout-count-aggregator rebuild`",
                extra={"scopes": scopes[:20], "fields": len(drifts)},
            )
        return drifts

    def _record(self, drifts: Sequence[Drift]) -> None:
        """Export one check's result; fields that no longer drift go back to 0."""
        totals: Counter[tuple[str, str]] = Counter()
        for d in drifts:
            kind = PLATFORM if d.scope == PLATFORM else "tenant"
            totals[(kind, label_of(d.field))] += abs(d.sql - d.redis)
        for labels in self._exported - set(totals):
            metrics.DRIFT.labels(*labels).set(0)
        for labels, value in totals.items():
            metrics.DRIFT.labels(*labels).set(value)
        self._exported.update(totals)
        metrics.DRIFT_SCOPES.set(len({d.scope for d in drifts}))
        metrics.DRIFT_LAST_CHECK.set(time.time())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.DRIFT_CHECKS.labels(outcome="failed").inc()
                log.warning("drift check failed: %r", exc)
