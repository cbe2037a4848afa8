"""SQL for streams. Every query takes the tenant it is scoped to (None only for a superuser)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from lookout_shared.db import Conn
from lookout_shared.streams import column_list

from lookout_api.domain.streams import CHANGEABLE

COLUMNS = column_list()


async def insert_many(
    conn: Conn, tenant_id: uuid.UUID, streams: Sequence[Mapping[str, Any]]
) -> list[asyncpg.Record]:
    """One statement for the whole batch; rows come back in input order."""
    ids = [uuid.uuid4() for _ in streams]
    # unnest would flatten a 2-D array, so each row's tags travel as one comma-joined text
    # (tags cannot hold a comma).
    rows = await conn.fetch(
        f"""INSERT INTO streams (id, tenant_id, name, url, kind, tags, enabled, status)
            SELECT u.id, $1, u.name, u.url, u.kind,
                   string_to_array(u.tags, ','), u.enabled, u.status
            FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::bool[], $8::text[])
                 AS u(id, name, url, kind, tags, enabled, status)
            RETURNING {COLUMNS}""",
        tenant_id,
        ids,
        [s["name"] for s in streams],
        [s["url"] for s in streams],
        [s["kind"] for s in streams],
        [",".join(s["tags"]) for s in streams],
        [s["enabled"] for s in streams],
        [s["status"] for s in streams],
    )
    # RETURNING order is not guaranteed; restore the input order by id.
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids]


async def get_stream(
    conn: Conn, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM streams WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
        stream_id,
        tenant_id,
    )


async def lock_streams(
    conn: Conn, stream_ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None
) -> list[asyncpg.Record]:
    """The tenant's streams among ``stream_ids``, locked until the transaction ends.

    Locking in id order keeps two batches touching the same streams from deadlocking.
    """
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM streams
            WHERE id = ANY($1::uuid[]) AND ($2::uuid IS NULL OR tenant_id = $2)
            ORDER BY id FOR UPDATE""",
        list(stream_ids),
        tenant_id,
    )


async def update_many(
    conn: Conn, updates: Sequence[tuple[uuid.UUID, int, Mapping[str, Any]]]
) -> list[asyncpg.Record]:
    """Write (id, expected version, new values) rows; each version rises by one.

    ``version = expected`` makes a stale write change nothing even without the row lock.
    """
    columns = ", ".join(f"{c} = u.{c}" for c in CHANGEABLE if c != "tags")
    return await conn.fetch(
        f"""UPDATE streams s SET {columns},
                   tags = string_to_array(u.tags, ','),
                   version = s.version + 1, updated_at = now()
            FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                        $6::text[], $7::bool[], $8::text[], $9::text[], $10::text[],
                        $11::int[], $12::int[], $13::text[], $14::bool[], $15::text[])
                 AS u(id, version, name, url, kind, tags, enabled, status, last_error,
                      last_error_category, width, height, codec, hot, hot_mode)
            WHERE s.id = u.id AND s.version = u.version
            RETURNING {column_list(alias="s")}""",
        [u[0] for u in updates],
        [u[1] for u in updates],
        *([",".join(u[2][c]) if c == "tags" else u[2][c] for u in updates] for c in CHANGEABLE),
    )


async def fail_active_jobs(conn: Conn, stream_id: uuid.UUID) -> list[asyncpg.Record]:
    """Fail the stream's queued or running jobs (it is being deleted); their new rows."""
    return await conn.fetch(
        """UPDATE snapshot_jobs
              SET status = 'failed', error = 'stream deleted', error_category = 'stream_deleted',
                  version = version + 1, finished_at = now()
            WHERE stream_id = $1 AND status IN ('queued', 'running')
        RETURNING id, tenant_id, stream_id, attempts, version""",
        stream_id,
    )


async def snapshots_of(conn: Conn, stream_id: uuid.UUID) -> list[asyncpg.Record]:
    """The stream's snapshots (at most the retention count), before they cascade away."""
    return await conn.fetch(
        "SELECT id, tenant_id, stream_id FROM snapshots WHERE stream_id = $1", stream_id
    )


async def delete_stream(conn: Conn, stream_id: uuid.UUID, version: int) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM streams WHERE id = $1 AND version = $2 RETURNING id", stream_id, version
    )
    return deleted is not None
