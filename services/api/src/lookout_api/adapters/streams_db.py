"""SQL for streams. Every query takes the tenant it is scoped to (None only for a superuser)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from lookout_shared.db import Conn

COLUMNS = (
    "id, tenant_id, name, url, kind, tags, enabled, status, last_error, width, height, codec, "
    "version, created_at, updated_at"
)


async def insert_stream(
    conn: Conn,
    tenant_id: uuid.UUID,
    name: str,
    url: str,
    kind: str,
    tags: list[str],
    enabled: bool,
    status: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""INSERT INTO streams (id, tenant_id, name, url, kind, tags, enabled, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}""",
        uuid.uuid4(),
        tenant_id,
        name,
        url,
        kind,
        tags,
        enabled,
        status,
    )
    assert row is not None  # RETURNING of an INSERT without ON CONFLICT
    return row


async def get_stream(
    conn: Conn, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM streams WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
        stream_id,
        tenant_id,
    )


async def list_streams(
    conn: Conn,
    tenant_id: uuid.UUID | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    """Newest first, keyset-paginated on (created_at, id): one index range scan per page."""
    after_created, after_id = after if after else (None, None)
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM streams
            WHERE ($1::uuid IS NULL OR tenant_id = $1)
              AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
            ORDER BY created_at DESC, id DESC LIMIT $4""",
        tenant_id,
        after_created,
        after_id,
        limit,
    )
