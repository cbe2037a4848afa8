"""API keys for machines: created by a tenant admin, shown once, revocable."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.tokens import Principal, Role

from lookout_api.adapters import api_keys_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, api_keys
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import NotFound
from lookout_api.handlers.outbox_writes import commit


async def create_api_key(
    deps: Deps, principal: Principal, name: str, role: Role, tenant_id: uuid.UUID | None
) -> tuple[asyncpg.Record, str]:
    """The key's row and its secret (never stored, never shown again)."""
    access.require_role(principal, "admin")
    access.grantable(principal, role)
    tenant = access.acting_tenant(principal, tenant_id)
    secret = api_keys.new_secret()
    async with deps.pool.acquire() as conn, conn.transaction():
        try:
            row = await api_keys_db.insert_key(
                conn,
                tenant,
                principal.user_id,
                name,
                role,
                api_keys.shown_prefix(secret),
                api_keys.digest(secret),
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("no such tenant") from None
        entry = Entry("api_key.created", "api_key", row["id"], tenant, {"name": name, "role": role})
        await commit(conn, principal, [entry], [])
    return row, secret


async def list_api_keys(deps: Deps, principal: Principal, limit: int) -> list[asyncpg.Record]:
    access.require_role(principal, "admin")
    async with deps.pool.acquire() as conn:
        return await api_keys_db.list_keys(conn, access.tenant_filter(principal), limit)


async def revoke_api_key(deps: Deps, principal: Principal, key_id: uuid.UUID) -> asyncpg.Record:
    access.require_role(principal, "admin")
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await api_keys_db.revoke_key(conn, key_id, access.tenant_filter(principal))
        if row is None:
            raise NotFound("no such API key")
        entry = Entry("api_key.revoked", "api_key", key_id, row["tenant_id"], {"name": row["name"]})
        await commit(conn, principal, [entry], [])
    # This process stops accepting it now; every other (and this one again) when the
    # lookout_principals notification of the commit arrives.
    deps.key_cache.evict(row["secret_hash"])
    return row
