"""The stream list: one SQL statement per page, and a total that avoids COUNT(*) when the
aggregator's counts answer it exactly."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

import asyncpg
from lookout_shared.tokens import Principal
from redis.exceptions import RedisError

from lookout_api.adapters import counts_redis, stream_list_db
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


async def list_streams(deps: Deps, principal: Principal, query: StreamQuery) -> StreamList:
    """``query.filter.tenant_id`` is the tenant a superuser asks for; everyone else always
    reads their own tenant."""
    scope = access.read_scope(principal, query.filter.tenant_id)
    query = replace(query, filter=replace(query.filter, tenant_id=scope))
    counted = await _count_from_redis(deps, query)
    async with deps.pool.acquire() as conn:
        rows, sql_total = await stream_list_db.list_page(
            conn, query, None if counted is not None else COUNT_CAP
        )
    if counted is not None:
        return StreamList(rows, counted, True, "counts")
    assert sql_total is not None
    return StreamList(rows, min(sql_total, COUNT_CAP), sql_total <= COUNT_CAP, "sql")


async def _count_from_redis(deps: Deps, query: StreamQuery) -> int | None:
    """The exact total from the aggregator's hash, or None to count in SQL instead:
    the filter is not one count dimension, Redis does not answer in time, or the scope
    has no hash yet (a new tenant the aggregator has not seen, or a stack without one)."""
    field = count_field(query.filter)
    if field is None:
        return None
    try:
        total, value = await asyncio.wait_for(
            counts_redis.read_fields(
                deps.redis, deps.keys, query.filter.tenant_id, "streams_total", field
            ),
            deps.settings.counts_timeout_seconds,
        )
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("counts unavailable, counting in SQL: %r", exc)
        return None
    if total is None:
        return None
    return value or 0
