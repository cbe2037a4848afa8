"""SQL for tenant quotas: the per-tenant overrides, and the stream count under a lock."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.db import Conn

QUOTA_COLUMNS = "id, max_streams, snapshot_requests_per_minute, max_hot_streams"
SETTABLE = ("max_streams", "snapshot_requests_per_minute", "max_hot_streams")


async def get_quotas(conn: Conn, tenant_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {QUOTA_COLUMNS} FROM tenants WHERE id = $1", tenant_id)


async def lock_quotas(conn: Conn, tenant_id: uuid.UUID) -> asyncpg.Record | None:
    """The tenant's overrides, its row locked until the transaction ends.

    FOR NO KEY UPDATE queues concurrent stream creates of one tenant behind each other (so
    the count below is never stale), yet leaves the key-share locks that foreign keys take
    (a worker inserting a snapshot) alone.
    """
    return await conn.fetchrow(
        f"SELECT {QUOTA_COLUMNS} FROM tenants WHERE id = $1 FOR NO KEY UPDATE", tenant_id
    )


async def count_streams(conn: Conn, tenant_id: uuid.UUID, up_to: int) -> int:
    """The tenant's streams, counted up to ``up_to`` at most: enough to compare with a
    limit, and bounded however many streams the tenant has."""
    count = await conn.fetchval(
        """SELECT count(*) FROM (SELECT 1 FROM streams WHERE tenant_id = $1 LIMIT $2) AS s""",
        tenant_id,
        up_to,
    )
    return int(count)


async def count_hot_streams(conn: Conn, tenant_id: uuid.UUID, up_to: int) -> int:
    """The tenant's hot streams, counted up to ``up_to`` at most (the partial index on hot
    streams serves it)."""
    count = await conn.fetchval(
        """SELECT count(*) FROM (SELECT 1 FROM streams WHERE tenant_id = $1 AND hot
                                 LIMIT $2) AS s""",
        tenant_id,
        up_to,
    )
    return int(count)


async def set_quotas(
    conn: Conn, tenant_id: uuid.UUID, values: dict[str, int | None]
) -> asyncpg.Record | None:
    """Write the given columns (None resets one to the default); the row, or None."""
    columns = [c for c in SETTABLE if c in values]
    if not columns:
        return await get_quotas(conn, tenant_id)
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    return await conn.fetchrow(
        f"UPDATE tenants SET {assignments} WHERE id = $1 RETURNING {QUOTA_COLUMNS}",
        tenant_id,
        *(values[c] for c in columns),
    )
