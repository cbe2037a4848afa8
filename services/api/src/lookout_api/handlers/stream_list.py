"""The stream list: one SQL statement per page, and a total that avoids COUNT(*) when the
aggregator's counts answer it exactly."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from lookout_shared.tokens import Principal

from lookout_api.domain import access
from lookout_api.domain.listing import COUNT_CAP, StreamQuery, count_field
from lookout_api.ports import Deps, RedisUnavailable, Row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamList:
    rows: list[Row]
    total: int
    total_is_exact: bool
    total_source: str  # "counts" (the aggregator, in Redis) or "sql"
    degraded: bool = False  # Redis did not answer: the total was counted in SQL
    # The count fields the total came from, with their values: a cached page lapses as soon
    # as they move.
    watched: dict[str, str | None] = field(default_factory=dict)
    # The counts epoch the total was decided under ("" when Redis's counts were not trusted;
    # None when the counts were not consulted): a cached page lapses when it changes.
    counts_epoch: str | None = None


async def list_streams(deps: Deps, principal: Principal, query: StreamQuery) -> StreamList:
    """``query.filter.tenant_id`` is the tenant a superuser asks for; everyone else always
    reads their own tenant."""
    scope = access.read_scope(principal, query.filter.tenant_id)
    query = replace(query, filter=replace(query.filter, tenant_id=scope))
    watched: dict[str, str | None] = {}
    epoch: str | None = None
    try:
        counted, watched, epoch = await _count_from_redis(deps, query)
        degraded = False
    except RedisUnavailable as exc:
        log.debug("counts unavailable, counting in SQL: %s", exc)
        counted, degraded = None, True
    async with deps.db.connect() as session:
        rows, sql_total = await session.list_page(query, None if counted is not None else COUNT_CAP)
    if counted is not None:
        return StreamList(rows, counted, True, "counts", watched=watched, counts_epoch=epoch)
    assert sql_total is not None
    exact = sql_total <= COUNT_CAP
    total = min(sql_total, COUNT_CAP)
    return StreamList(rows, total, exact, "sql", degraded, watched, epoch)


async def _count_from_redis(
    deps: Deps, query: StreamQuery
) -> tuple[int | None, dict[str, str | None], str | None]:
    """The exact total from the aggregator's hash, or None to count in SQL instead: the
    filter is not one count dimension, Redis's counts are not trusted (it lost state since
    the aggregator's last rebuild), or the scope has no hash yet (a new tenant the
    aggregator has not seen). Also the count fields read, with their values (None: absent),
    and the counts epoch, so a cached page lapses when they change or appear.
    Raises RedisUnavailable when Redis does not answer in time (or failed a moment ago)."""
    counted = count_field(query.filter)
    if counted is None:
        return None, {}, None
    read = await deps.counts.fields(query.filter.tenant_id, "streams_total", counted)
    if read is None:
        return None, {}, ""
    epoch, (total, value) = read
    watched = {"streams_total": _text(total), counted: _text(value)}
    return (None if total is None else value or 0), watched, epoch


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
