"""Reading the audit log: tenant admins see their tenant's, superusers everyone's."""

from __future__ import annotations

import uuid

from lookout_shared.tokens import Principal

from lookout_api.domain import access
from lookout_api.ports import Deps, Row


async def list_audit(
    deps: Deps,
    principal: Principal,
    limit: int,
    before_id: int | None,
    entity_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> list[Row]:
    access.require_role(principal, "admin")
    scope = access.read_scope(principal, tenant_id)
    async with deps.db.connect() as session:
        return await session.list_audit(scope, limit, before_id, entity_id)
