"""SQL for webhooks and their failed deliveries. The sealed secret is never selected here:
only the notifier reads it."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.db import Conn

COLUMNS = "id, tenant_id, url, events, created_at, disabled"
DELIVERY_COLUMNS = (
    "id, webhook_id, event_id, event_type, status, attempts, last_error, created_at, updated_at"
)


async def insert(
    conn: Conn, tenant_id: uuid.UUID, url: str, events: list[str], sealed: bytes
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""INSERT INTO webhooks (tenant_id, url, events, secret_sealed)
            VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}""",
        tenant_id,
        url,
        events,
        sealed,
    )
    assert row is not None
    return row


async def list_for(conn: Conn, tenant_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM webhooks WHERE ($1::uuid IS NULL OR tenant_id = $1)
            ORDER BY created_at, id LIMIT $2""",
        tenant_id,
        limit,
    )


async def get(
    conn: Conn, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
        webhook_id,
        tenant_id,
    )


async def delete(
    conn: Conn, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """DELETE FROM webhooks WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
           RETURNING id, tenant_id""",
        webhook_id,
        tenant_id,
    )


async def list_deliveries(
    conn: Conn, webhook_id: uuid.UUID, status: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
            WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2)
            ORDER BY created_at, id LIMIT $3""",
        webhook_id,
        status,
        limit,
    )


async def request_replay(
    conn: Conn, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> asyncpg.Record | None:
    """Mark a failed (or delivered) delivery for sending again; None if there is none."""
    return await conn.fetchrow(
        f"""UPDATE webhook_deliveries SET status = 'replay', updated_at = now()
            WHERE id = $1 AND webhook_id = $2 AND status IN ('failed', 'delivered')
            RETURNING {DELIVERY_COLUMNS}""",
        delivery_id,
        webhook_id,
    )


async def insert_test(
    conn: Conn, webhook_id: uuid.UUID, tenant_id: uuid.UUID, event_id: uuid.UUID, body: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""INSERT INTO webhook_deliveries
              (webhook_id, tenant_id, event_id, event_type, body, status)
            VALUES ($1, $2, $3, 'webhook.test', $4, 'replay') RETURNING {DELIVERY_COLUMNS}""",
        webhook_id,
        tenant_id,
        event_id,
        body,
    )
    assert row is not None
    return row
