"""SQL for the audit log: written in the caller's transaction, read newest first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from lookout_shared.db import Conn

from lookout_api.domain.audit import Entry

COLUMNS = (
    "id, tenant_id, actor_id, actor_kind, api_key_id, action, entity_type, entity_id, "
    "changes, created_at"
)


async def record(
    conn: Conn,
    actor: tuple[str, uuid.UUID | None, uuid.UUID | None],
    entries: Sequence[Entry],
) -> None:
    kind, actor_id, key_id = actor
    await conn.executemany(
        """INSERT INTO audit_log
               (tenant_id, actor_id, actor_kind, api_key_id, action, entity_type, entity_id,
                changes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (e.tenant_id, actor_id, kind, key_id, e.action, e.entity_type, e.entity_id, e.changes)
            for e in entries
        ],
    )


async def list_entries(
    conn: Conn,
    tenant_id: uuid.UUID | None,
    limit: int,
    before_id: int | None,
    entity_id: uuid.UUID | None,
) -> list[asyncpg.Record]:
    """Newest first, keyset on the id: ``(tenant_id, id DESC)`` serves each page."""
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM audit_log
            WHERE ($1::uuid IS NULL OR tenant_id = $1)
              AND ($2::bigint IS NULL OR id < $2)
              AND ($3::uuid IS NULL OR entity_id = $3)
            ORDER BY id DESC LIMIT $4""",
        tenant_id,
        before_id,
        entity_id,
        limit,
    )
