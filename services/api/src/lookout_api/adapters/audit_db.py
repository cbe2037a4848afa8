"""SQL for the audit log: written in the caller's transaction, read newest first."""

from __future__ import annotations

import json
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
    """One statement for any number of entries (a bulk write records hundreds)."""
    if not entries:
        return
    kind, actor_id, key_id = actor
    await conn.execute(
        """INSERT INTO audit_log
               (tenant_id, actor_id, actor_kind, api_key_id, action, entity_type, entity_id,
                changes)
           SELECT e.tenant_id, $1, $2, $3, e.action, e.entity_type, e.entity_id,
                  e.changes::jsonb
           FROM unnest($4::uuid[], $5::text[], $6::text[], $7::uuid[], $8::text[])
                WITH ORDINALITY AS e(tenant_id, action, entity_type, entity_id, changes, n)
           ORDER BY e.n""",
        actor_id,
        kind,
        key_id,
        [e.tenant_id for e in entries],
        [e.action for e in entries],
        [e.entity_type for e in entries],
        [e.entity_id for e in entries],
        [json.dumps(e.changes) for e in entries],
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
