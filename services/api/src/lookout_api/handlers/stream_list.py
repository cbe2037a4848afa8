"""The stream list: one SQL statement per page, and a total that avoids COUNT(*) when the
aggregator's counts answer it exactly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import asyncpg
from lookout_shared.tokens import Principal

from lookout_api.adapters import counts_redis, stream_list_db
from lookout_api.adapters.read_cache import CacheKey, Computed, RedisUnavailable, Served
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


async def list_streams(deps: Deps, principal: Principal, query: StreamQuery) -> StreamList:
    """``query.filter.tenant_id`` is the tenant a superuser asks for; everyone else always
    reads their own tenant."""
    scope = access.read_scope(principal, query.filter.tenant_id)
    query = replace(query, filter=replace(query.filter, tenant_id=scope))
    try:
        counted = await _count_from_redis(deps, query)
        degraded = False
    except RedisUnavailable as exc:
        log.debug("counts unavailable, counting in SQL: %s", exc)
        counted, degraded = None, True
    async with deps.pool.acquire() as conn:
        rows, sql_total = await stream_list_db.list_page(
            conn, query, None if counted is not None else COUNT_CAP
        )
    if counted is not None:
        return StreamList(rows, counted, True, "counts")
    assert sql_total is not None
    return StreamList(rows, min(sql_total, COUNT_CAP), sql_total <= COUNT_CAP, "sql", degraded)


async def stream_page(
    deps: Deps,
    principal: Principal,
    query: StreamQuery,
    wanted: tuple[str, ...] | None,
    render: Callable[[StreamList, tuple[str, ...]], bytes],
) -> Served:
    """A list page as response bytes, through the read cache. ``wanted``: the fields asked
    for (None: all), narrowed to those the principal may see; ``render`` makes the bytes."""
    scope = access.read_scope(principal, query.filter.tenant_id)
    fields = access.visible_fields(principal, wanted)
    f, after = query.filter, query.after
    position = None if after is None else (str(after.value), str(after.row_id))
    counted = count_field(f)
    key = CacheKey(
        "list",
        scope,
        (
            str(query.sort),
            query.limit,
            position,
            query.offset,
            f.status,
            f.kind,
            f.tag,
            f.q,
            fields,
        ),
        # The total may come from these count fields: a change there is a new page.
        () if counted is None else tuple(dict.fromkeys(("streams_total", counted))),
    )

    async def compute() -> Computed:
        result = await list_streams(deps, principal, query)
        return Computed(render(result, fields), degraded=result.degraded)

    return await deps.cache.fetch(key, compute)


async def _count_from_redis(deps: Deps, query: StreamQuery) -> int | None:
    """The exact total from the aggregator's hash, or None to count in SQL instead: the
    filter is not one count dimension, or the scope has no hash yet (a new tenant the
    aggregator has not seen, or a stack without one). Raises RedisUnavailable when Redis
    does not answer in time (or failed a moment ago)."""
    field = count_field(query.filter)
    if field is None:
        return None
    total, value = await deps.cache.breaker.call(
        lambda: counts_redis.read_fields(
            deps.redis, deps.keys, query.filter.tenant_id, "streams_total", field
        ),
        deps.settings.counts_timeout_seconds,
    )
    if total is None:
        return None
    return value or 0
