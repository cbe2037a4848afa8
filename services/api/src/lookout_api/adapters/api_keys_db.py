"""SQL for API keys."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.db import Conn

COLUMNS = "id, tenant_id, created_by, name, role, prefix, created_at, revoked_at"
# A key is live while it is not revoked and its creator still holds what it grants: the
# account exists (keys cascade with users), is not disabled, is in the key's tenant (or a
# superuser) and has at least the key's role. Nobody keeps power through a key that they
# lost themselves.
_LIVE = """FROM api_keys k JOIN users u ON u.id = k.created_by
    WHERE k.revoked_at IS NULL AND u.disabled_at IS NULL
      AND (u.role = 'superuser' OR u.tenant_id = k.tenant_id)
      AND array_position(ARRAY['viewer', 'operator', 'admin', 'superuser'], u.role)
          >= array_position(ARRAY['viewer', 'operator', 'admin', 'superuser'], k.role)"""
_K_COLUMNS = ", ".join(f"k.{c}" for c in COLUMNS.split(", "))


async def insert_key(
    conn: Conn,
    tenant_id: uuid.UUID,
    created_by: uuid.UUID,
    name: str,
    role: str,
    prefix: str,
    secret_hash: bytes,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (id, tenant_id, created_by, name, role, prefix, secret_hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}""",
        uuid.uuid4(),
        tenant_id,
        created_by,
        name,
        role,
        prefix,
        secret_hash,
    )
    assert row is not None
    return row


async def active_key(conn: Conn, secret_hash: bytes) -> asyncpg.Record | None:
    """The live key with this hash."""
    return await conn.fetchrow(f"SELECT {_K_COLUMNS} {_LIVE} AND k.secret_hash = $1", secret_hash)


async def key_is_live(conn: Conn, key_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(f"SELECT 1 {_LIVE} AND k.id = $1", key_id))


async def list_keys(conn: Conn, tenant_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM api_keys WHERE ($1::uuid IS NULL OR tenant_id = $1)
            ORDER BY created_at DESC, id DESC LIMIT $2""",
        tenant_id,
        limit,
    )


async def revoke_key(
    conn: Conn, key_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    """The revoked key (revoking twice keeps the first time), or None when not visible."""
    return await conn.fetchrow(
        f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
            WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
            RETURNING {COLUMNS}, secret_hash""",
        key_id,
        tenant_id,
    )
