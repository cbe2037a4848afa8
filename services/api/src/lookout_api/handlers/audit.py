"""Reading the audit log: tenant admins see their tenant's, superusers everyone's."""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.tokens import Principal

from lookout_api.adapters import audit_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import access


async def list_audit(
    deps: Deps,
    principal: Principal,
    limit: int,
    before_id: int | None,
    entity_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> list[asyncpg.Record]:
    access.require_role(principal, "admin")
    scope = access.read_scope(principal, tenant_id)
    async with deps.pool.acquire() as conn:
        return await audit_db.list_entries(conn, scope, limit, before_id, entity_id)
