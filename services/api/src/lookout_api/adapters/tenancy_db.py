"""SQL for tenants and users."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.db import Conn

USER_COLUMNS = "id, tenant_id, email, role, created_at"


async def insert_tenant(conn: Conn, name: str) -> asyncpg.Record | None:
    """The new tenant, or None when the name is taken."""
    return await conn.fetchrow(
        """INSERT INTO tenants (id, name) VALUES ($1, $2)
           ON CONFLICT (lower(name)) DO NOTHING RETURNING id, name, created_at""",
        uuid.uuid4(),
        name,
    )


async def tenant_by_name(conn: Conn, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, created_at FROM tenants WHERE lower(name) = lower($1)", name
    )


async def tenant_exists(conn: Conn, tenant_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM tenants WHERE id = $1", tenant_id))


async def insert_user(
    conn: Conn,
    tenant_id: uuid.UUID | None,
    email: str,
    password_hash: str,
    role: str,
) -> asyncpg.Record | None:
    """The new user, or None when the e-mail is taken."""
    return await conn.fetchrow(
        f"""INSERT INTO users (id, tenant_id, email, password_hash, role)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING
            RETURNING {USER_COLUMNS}""",
        uuid.uuid4(),
        tenant_id,
        email,
        password_hash,
        role,
    )


async def user_for_login(conn: Conn, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {USER_COLUMNS}, password_hash, token_version FROM users
            WHERE email = $1 AND disabled_at IS NULL""",
        email,
    )


async def user_standing(conn: Conn, user_id: uuid.UUID) -> asyncpg.Record | None:
    """What a token must still match: the enabled account's role, tenant and token version."""
    return await conn.fetchrow(
        "SELECT role, tenant_id, token_version FROM users WHERE id = $1 AND disabled_at IS NULL",
        user_id,
    )


async def user_by_id(conn: Conn, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def delete_user(
    conn: Conn, user_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> asyncpg.Record | None:
    """The deleted user, or None when not visible in ``tenant_id`` (None: any tenant)."""
    return await conn.fetchrow(
        f"""DELETE FROM users WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
            RETURNING {USER_COLUMNS}""",
        user_id,
        tenant_id,
    )


async def list_users(conn: Conn, tenant_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {USER_COLUMNS} FROM users WHERE ($1::uuid IS NULL OR tenant_id = $1)
            ORDER BY created_at DESC, id DESC LIMIT $2""",
        tenant_id,
        limit,
    )
