"""API keys for machines: created by a tenant admin, shown once, revocable."""

from __future__ import annotations

import uuid

from lookout_shared.tokens import Principal, Role

from lookout_api.domain import access, api_keys
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import NotFound
from lookout_api.handlers.outbox_writes import commit
from lookout_api.ports import Deps, MissingReference, Row


async def create_api_key(
    deps: Deps, principal: Principal, name: str, role: Role, tenant_id: uuid.UUID | None
) -> tuple[Row, str]:
    """The key's row and its secret (never stored, never shown again)."""
    access.require_role(principal, "admin")
    access.grantable(principal, role)
    tenant = access.acting_tenant(principal, tenant_id)
    secret = api_keys.new_secret()
    async with deps.db.transaction() as tx:
        try:
            row = await tx.insert_key(
                tenant,
                principal.user_id,
                name,
                role,
                api_keys.shown_prefix(secret),
                api_keys.digest(secret),
            )
        except MissingReference:
            raise NotFound("no such tenant") from None
        entry = Entry("api_key.created", "api_key", row["id"], tenant, {"name": name, "role": role})
        await commit(tx, principal, [entry], [])
    return row, secret


async def list_api_keys(deps: Deps, principal: Principal, limit: int) -> list[Row]:
    access.require_role(principal, "admin")
    async with deps.db.connect() as session:
        return await session.list_keys(access.tenant_filter(principal), limit)


async def revoke_api_key(deps: Deps, principal: Principal, key_id: uuid.UUID) -> Row:
    access.require_role(principal, "admin")
    async with deps.db.transaction() as tx:
        row = await tx.revoke_key(key_id, access.tenant_filter(principal))
        if row is None:
            raise NotFound("no such API key")
        entry = Entry("api_key.revoked", "api_key", key_id, row["tenant_id"], {"name": row["name"]})
        await commit(tx, principal, [entry], [])
    # This process stops accepting it now; every other (and this one again) when the
    # lookout_principals notification of the commit arrives.
    deps.key_cache.evict(row["secret_hash"])
    return row
