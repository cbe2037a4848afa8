"""SQL for snapshot jobs and snapshots."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from lookout_shared.db import Conn

JOB_COLUMNS = (
    "id, tenant_id, stream_id, status, attempts, error, error_category, snapshot_id, version, "
    "created_at, started_at, finished_at"
)
SNAPSHOT_COLUMNS = (
    "id, tenant_id, stream_id, job_id, storage_key, content_type, size_bytes, sha256, width, "
    "height, created_at"
)


async def stream_for_request(
    conn: Conn, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    """What a snapshot request checks, in one round trip: the stream (in ``tenant_id``;
    None: any) and its tenant's quota overrides."""
    return await conn.fetchrow(
        """SELECT s.id, s.tenant_id, s.enabled,
                  t.max_streams, t.snapshot_requests_per_minute, t.max_hot_streams
           FROM streams s JOIN tenants t ON t.id = s.tenant_id
           WHERE s.id = $1 AND ($2::uuid IS NULL OR s.tenant_id = $2)""",
        stream_id,
        tenant_id,
    )


async def insert_job_or_join(
    conn: Conn, tenant_id: uuid.UUID, stream_id: uuid.UUID
) -> tuple[asyncpg.Record, bool]:
    """A new queued job, or the stream's active one; the flag says whether it is new.

    The partial unique index on active jobs makes concurrent requests agree on one job.
    """
    row = await conn.fetchrow(
        f"""INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES ($1, $2, $3)
            ON CONFLICT (stream_id) WHERE status IN ('queued', 'running') DO NOTHING
            RETURNING {JOB_COLUMNS}""",
        uuid.uuid4(),
        tenant_id,
        stream_id,
    )
    if row is not None:
        return row, True
    active = await conn.fetchrow(
        f"""SELECT {JOB_COLUMNS} FROM snapshot_jobs
            WHERE stream_id = $1 AND status IN ('queued', 'running')""",
        stream_id,
    )
    if active is None:  # it finished between the two statements: queue a fresh one
        return await insert_job_or_join(conn, tenant_id, stream_id)
    return active, False


async def get_job(
    conn: Conn, job_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {JOB_COLUMNS} FROM snapshot_jobs
            WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)""",
        job_id,
        tenant_id,
    )


async def get_snapshot(
    conn: Conn, snapshot_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {SNAPSHOT_COLUMNS} FROM snapshots
            WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)""",
        snapshot_id,
        tenant_id,
    )


async def latest_snapshot(
    conn: Conn, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {SNAPSHOT_COLUMNS} FROM snapshots
            WHERE stream_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
            ORDER BY created_at DESC, id DESC LIMIT 1""",
        stream_id,
        tenant_id,
    )


async def fresh_snapshot(
    conn: Conn, stream_id: uuid.UUID, max_age_seconds: int
) -> asyncpg.Record | None:
    """The stream's latest snapshot when it is at most ``max_age_seconds`` old."""
    return await conn.fetchrow(
        f"""SELECT {SNAPSHOT_COLUMNS} FROM snapshots
            WHERE stream_id = $1 AND created_at >= now() - make_interval(secs => $2)
            ORDER BY created_at DESC, id DESC LIMIT 1""",
        stream_id,
        max_age_seconds,
    )


async def list_snapshots(
    conn: Conn,
    stream_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    """One page of a stream's snapshots, newest first (ties by id), after ``after``.

    The order matches the index (stream_id, created_at DESC, id), so a page is an index
    range scan wherever it starts.
    """
    if after is None:
        return await conn.fetch(
            f"""SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE stream_id = $1
                ORDER BY created_at DESC, id LIMIT $2""",
            stream_id,
            limit,
        )
    return await conn.fetch(
        f"""SELECT {SNAPSHOT_COLUMNS} FROM snapshots
            WHERE stream_id = $1 AND (created_at < $3 OR (created_at = $3 AND id > $4))
            ORDER BY created_at DESC, id LIMIT $2""",
        stream_id,
        limit,
        *after,
    )
