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

from lookout_shared.drift_report import DriftReport
from lookout_shared.tokens import Principal

from lookout_api.domain import access, quotas
from lookout_api.domain.errors import NotFound
from lookout_api.handlers.quotas import effective
from lookout_api.ports import DashboardValues, Deps, RedisUnavailable, Row

log = logging.getLogger(__name__)
BROKER_STATE_SECONDS = 1.0
SQL_TIMEOUT_SECONDS = 5.0


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
    count_in_sql = redis_values is None or not redis_values.counts
    # Postgres unavailable (or slower than the bound) answers 503 like every route does
    # (entrypoints/errors.py): the dashboard needs it.
    async with asyncio.timeout(SQL_TIMEOUT_SECONDS), deps.db.connect() as session:
        row = await session.dashboard_summary(
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
        counts, source = row["counts"], "sql"
    else:
        assert redis_values is not None
        counts, source = redis_values.counts, "counts"
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
        drift=None if redis_values is None else redis_values.drift,
    )


async def _read_redis(deps: Deps, scope: uuid.UUID | None) -> DashboardValues | None:
    """Counts, snapshot requests this minute and the last drift check in one round trip;
    None when Redis does not answer in time or failed a moment ago (the breaker). The counts
    are empty when Redis has none for the scope or cannot vouch for them."""
    try:
        return await deps.counts.dashboard(scope)
    except RedisUnavailable as exc:
        log.debug("dashboard: Redis unavailable, counting in SQL: %s", exc)
        return None


async def _broker_state(deps: Deps) -> tuple[bool, dict[str, int] | None]:
    """The queue depths (ports.QueueDepths), shared for BROKER_STATE_SECONDS: the depths are
    the same for every caller, and a probe opens a channel and declares every queue, which
    under a load of dashboards cost more than the rest of the summary. Only a full answer is
    kept, so a broker that comes back shows at once; one that goes away shows within that
    time."""
    kept = deps.broker_state
    if kept is not None and time.monotonic() - kept[0] < BROKER_STATE_SECONDS:
        return True, kept[1]
    async with deps.broker_probe:  # one probe at a time; the others take its answer
        kept = deps.broker_state
        if kept is not None and time.monotonic() - kept[0] < BROKER_STATE_SECONDS:
            return True, kept[1]
        connected, depths = await deps.queues.probe()
        deps.broker_state = (time.monotonic(), depths) if depths is not None else None
        return connected, depths


def _usage(
    deps: Deps, tenant_id: uuid.UUID, row: Row, redis_values: DashboardValues | None
) -> quotas.QuotaUsage:
    requests = None if redis_values is None else redis_values.snapshot_requests
    return quotas.QuotaUsage(
        tenant_id, effective(deps.settings, row), row["streams_used"], requests
    )
