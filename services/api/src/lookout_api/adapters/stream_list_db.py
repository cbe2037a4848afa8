"""The stream list query: one statement per page, the capped count folded in when needed.

Keyset pages compare the row tuple ``(sort column, id)`` with the previous page's last row,
so Postgres walks an index range (``(tenant_id, created_at, id)`` or
``(tenant_id, name, id)``) forwards or backwards and never counts or skips rows.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from lookout_shared.db import Conn

from lookout_api.adapters.streams_db import COLUMNS
from lookout_api.domain.listing import StreamFilter, StreamQuery, like_pattern


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _filter_sql(f: StreamFilter, p: _Params) -> list[str]:
    where = []
    if f.tenant_id is not None:
        where.append(f"tenant_id = {p(f.tenant_id)}")
    if f.status is not None:
        where.append(f"status = {p(f.status)}")
    if f.kind is not None:
        where.append(f"kind = {p(f.kind)}")
    if f.tag is not None:
        where.append(f"tags @> ARRAY[{p(f.tag)}]::text[]")
    if f.q is not None:
        where.append(f"name ILIKE {p(like_pattern(f.q))}")
    return where


async def list_page(
    conn: Conn, query: StreamQuery, count_cap: int | None
) -> tuple[list[asyncpg.Record], int | None]:
    """The page's rows and, when ``count_cap`` is given, how many rows match the filter
    (counted up to ``count_cap + 1``, so a huge match costs a bounded scan)."""
    p = _Params()
    filters = _filter_sql(query.filter, p)
    page_where = list(filters)
    column = query.sort.key
    direction = "DESC" if query.sort.descending else "ASC"
    if query.after is not None:
        op = "<" if query.sort.descending else ">"
        cast = "timestamptz" if column == "created_at" else "text"
        value = f"{p(query.after.value)}::{cast}"
        page_where.append(f"({column}, id) {op} ({value}, {p(query.after.row_id)}::uuid)")
    page_sql = (
        f"SELECT {COLUMNS} FROM streams WHERE {' AND '.join(page_where) or 'true'} "
        f"ORDER BY {column} {direction}, id {direction} "
        f"LIMIT {p(query.limit)} OFFSET {p(query.offset)}"
    )
    if count_cap is None:
        return await conn.fetch(page_sql, *p.values), None
    # One round trip: the total's single row LEFT JOINs the page, so an empty page still
    # carries its total (as one row of NULL columns).
    count_sql = (
        f"SELECT count(*) AS n FROM (SELECT 1 FROM streams "
        f"WHERE {' AND '.join(filters) or 'true'} LIMIT {p(count_cap + 1)}) capped"
    )
    rows = await conn.fetch(
        f"""WITH page AS ({page_sql}), total AS ({count_sql})
            SELECT total.n AS total_count, page.* FROM total LEFT JOIN page ON true
            ORDER BY page.{column} {direction}, page.id {direction}""",
        *p.values,
    )
    total = int(rows[0]["total_count"])
    return [r for r in rows if r["id"] is not None], total
