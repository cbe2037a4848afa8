"""The stream list: one SQL statement per page, and a total that avoids COUNT(*) when the
aggregator's counts answer it exactly."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import asyncpg
from lookout_shared.tokens import Principal

from lookout_api.adapters import counts_redis, stream_list_db
from lookout_api.adapters.read_cache import RedisUnavailable
from lookout_api.bootstrap import Deps
from lookout_api.domain import access
from lookout_api.domain.listing import COUNT_CAP, StreamQuery, count_field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamList:
    rows: list[asyncpg.Record]
    total: int
    total_is_exact: bool
    total_source: str  # "counts" (the aggregator, in Redis) or "sql"
    degraded: bool = False  # Redis did not answer: the total was counted in SQL
    # The count fields the total came from, with their values: a cached page lapses as soon
    # as they move.
    watched: dict[str, str | None] = field(default_factory=dict)


async def list_streams(deps: Deps, principal: Principal, query: StreamQuery) -> StreamList:
    """``query.filter.tenant_id`` is the tenant a superuser asks for; everyone else always
    reads their own tenant."""
    scope = access.read_scope(principal, query.filter.tenant_id)
    query = replace(query, filter=replace(query.filter, tenant_id=scope))
    watched: dict[str, str | None] = {}
    try:
        counted, watched = await _count_from_redis(deps, query)
        degraded = False
    except RedisUnavailable as exc:
        log.debug("counts unavailable, counting in SQL: %s", exc)
        counted, degraded = None, True
    async with deps.pool.acquire() as conn:
        rows, sql_total = await stream_list_db.list_page(
            conn, query, None if counted is not None else COUNT_CAP
        )
    if counted is not None:
        return StreamList(rows, counted, True, "counts", watched=watched)
    assert sql_total is not None
    exact = sql_total <= COUNT_CAP
    return StreamList(rows, min(sql_total, COUNT_CAP), exact, "sql", degraded, watched)


async def _count_from_redis(
    deps: Deps, query: StreamQuery
) -> tuple[int | None, dict[str, str | None]]:
    """The exact total from the aggregator's hash, or None to count in SQL instead: the
    filter is not one count dimension, or the scope has no hash yet (a new tenant the
    aggregator has not seen, or a stack without one). Also the count fields read, with
    their values (None: absent), so a cached page lapses when they change or appear.
    Raises RedisUnavailable when Redis does not answer in time (or failed a moment ago)."""
    counted = count_field(query.filter)
    if counted is None:
        return None, {}
    total, value = await deps.cache.breaker.call(
        lambda: counts_redis.read_fields(
            deps.redis, deps.keys, query.filter.tenant_id, "streams_total", counted
        ),
        deps.settings.counts_timeout_seconds,
    )
    watched = {"streams_total": _text(total), counted: _text(value)}
    return (None if total is None else value or 0), watched


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
