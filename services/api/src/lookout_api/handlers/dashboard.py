"""The dashboard: counts, recent failures, queue depths, dependency health and quota usage
in one call, for one tenant or (a superuser) the platform.

Its cost is bounded by construction: one Redis round trip (a pipeline), one SQL statement,
and, when RabbitMQ is connected, one channel with a passive declare per work queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika.exceptions
import asyncpg
from lookout_shared import topology
from lookout_shared.drift_report import DriftReport, report_key
from lookout_shared.drift_report import decode as decode_drift
from lookout_shared.tokens import Principal

from lookout_api import bootstrap
from lookout_api.adapters import counts_redis, dashboard_db
from lookout_api.adapters.dead_letters import dead_queues
from lookout_api.adapters.read_cache import RedisUnavailable
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, quotas
from lookout_api.domain.errors import NotFound
from lookout_api.handlers.quotas import effective, snapshot_rate_key

log = logging.getLogger(__name__)
BROKER_STATE_SECONDS = 1.0
SQL_TIMEOUT_SECONDS = 5.0
BROKER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Dashboard:
    scope: uuid.UUID | None
    counts: dict[str, int]
    counts_source: Literal["counts", "sql"]
    failed_jobs: list[dict[str, Any]]
    error_streams: list[dict[str, Any]]
    outbox_unpublished: int
    outbox_oldest_age_seconds: float | None
    queue_depths: dict[str, int] | None  # None: RabbitMQ not connected
    health: dict[str, bool]
    quota_usage: quotas.QuotaUsage | None  # None for the platform scope
    drift: DriftReport | None  # the aggregator's last drift check (None: none yet, or no Redis)


async def dashboard(
    deps: Deps, principal: Principal, tenant_id: uuid.UUID | None = None
) -> Dashboard:
    if not principal.is_superuser and tenant_id not in (None, principal.tenant_id):
        raise NotFound("no such tenant")
    scope = access.tenant_filter(principal) if tenant_id is None else tenant_id
    redis_values = await _read_redis(deps, scope)
    # No hash yet (the aggregator has not seen the scope): count in SQL, as /counts does.
    count_in_sql = redis_values is None or not redis_values[0]
    # Postgres unavailable (or slower than the bound) answers 503 like every route does
    # (entrypoints/errors.py): the dashboard needs it.
    async with asyncio.timeout(SQL_TIMEOUT_SECONDS), deps.pool.acquire() as conn:
        row = await dashboard_db.summary(
            conn,
            scope,
            count_in_sql=count_in_sql,
            failures=deps.settings.dashboard_failures_limit,
            default_max_streams=deps.settings.default_max_streams,
        )
    if scope is not None and not row["tenant_found"]:
        raise NotFound("no such tenant")
    rabbitmq_ok, depths = await _broker_state(deps)
    source: Literal["counts", "sql"]
    if count_in_sql:
        counts, source = dashboard_db.counts_of(row), "sql"
    else:
        assert redis_values is not None
        counts, source = redis_values[0], "counts"
    return Dashboard(
        scope=scope,
        counts=counts,
        counts_source=source,
        failed_jobs=row["failed_jobs"],
        error_streams=row["error_streams"],
        outbox_unpublished=row["outbox_unpublished"],
        outbox_oldest_age_seconds=row["outbox_oldest_age"],
        queue_depths=depths,
        health={"postgres": True, "redis": redis_values is not None, "rabbitmq": rabbitmq_ok},
        quota_usage=None if scope is None else _usage(deps, scope, row, redis_values),
        drift=None if redis_values is None else redis_values[2],
    )


async def _read_redis(
    deps: Deps, scope: uuid.UUID | None
) -> tuple[dict[str, int], int | None, DriftReport | None] | None:
    """(counts, snapshot requests this minute, the last drift check) in one pipelined round
    trip; None when Redis
    does not answer in time or failed a moment ago (the read cache's breaker). The counts
    are empty when Redis has none for the scope or cannot vouch for them."""

    async def read() -> list[Any]:
        async with deps.redis.pipeline(transaction=False) as pipe:
            counts_redis.queue_counts(deps.keys, scope, pipe)
            pipe.get(report_key(deps.keys))
            if scope is not None:
                pipe.get(snapshot_rate_key(deps, scope))
            return await pipe.execute()

    try:
        replies = await deps.cache.breaker.call(read, deps.settings.counts_timeout_seconds)
    except RedisUnavailable as exc:
        log.debug("dashboard: Redis unavailable, counting in SQL: %s", exc)
        return None
    # Counts Redis cannot vouch for (it lost state) count as none: SQL counts.
    counts = counts_redis.decode_counts(replies[0]) or {}
    requests = int(replies[2] or 0) if scope is not None else None
    return counts, requests, decode_drift(replies[1])


async def _broker_state(deps: Deps) -> tuple[bool, dict[str, int] | None]:
    """:func:`_probe_broker`, shared for BROKER_STATE_SECONDS: the depths are the same for
    every caller, and a probe opens a channel and declares every queue, which under a load
    of dashboards cost more than the rest of the summary. Only a full answer is kept, so a
    broker that comes back shows at once; one that goes away shows within that time."""
    kept = deps.broker_state
    if kept is not None and time.monotonic() - kept[0] < BROKER_STATE_SECONDS:
        return True, kept[1]
    async with deps.broker_probe:  # one probe at a time; the others take its answer
        kept = deps.broker_state
        if kept is not None and time.monotonic() - kept[0] < BROKER_STATE_SECONDS:
            return True, kept[1]
        connected, depths = await _probe_broker(deps)
        deps.broker_state = (time.monotonic(), depths) if depths is not None else None
        return connected, depths


async def _probe_broker(deps: Deps) -> tuple[bool, dict[str, int] | None]:
    """Whether the api is connected to RabbitMQ and, if so, the messages ready in every
    work queue and dead-letter queue (passive declares: nothing is created)."""
    try:
        await bootstrap.readiness_checks(deps)["rabbitmq"]()
    except ConnectionError:
        return False, None
    assert deps.broker is not None
    names = [w.name for w in topology.WORK_QUEUES] + dead_queues()
    try:
        async with asyncio.timeout(BROKER_TIMEOUT_SECONDS):
            channel = await deps.broker.connection.channel()
            try:
                depths = {}
                for name in names:
                    queue = await channel.declare_queue(name, passive=True)
                    depths[name] = queue.declaration_result.message_count or 0
            finally:
                await channel.close()
    except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
        log.warning("dashboard: RabbitMQ queue depths unavailable: %r", exc)
        return True, None
    return True, depths


def _usage(
    deps: Deps,
    tenant_id: uuid.UUID,
    row: asyncpg.Record,
    redis_values: tuple[dict[str, int], int | None, DriftReport | None] | None,
) -> quotas.QuotaUsage:
    requests = None if redis_values is None else redis_values[1]
    return quotas.QuotaUsage(
        tenant_id, effective(deps.settings, row), row["streams_used"], requests
    )
