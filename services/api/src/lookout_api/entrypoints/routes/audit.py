"""The audit log, newest first."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from lookout_api import handlers
from lookout_api.domain.errors import InvalidInput
from lookout_api.entrypoints.deps import CheckedPrincipalDep, DepsDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.schemas import AuditOut, AuditPage

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=COMMON)


@router.get("/audit", response_model=AuditPage, summary="List audit entries, newest first")
async def list_audit(
    deps: DepsDep,
    principal: CheckedPrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
    entity_id: uuid.UUID | None = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="superusers only")] = None,
) -> AuditPage:
    if cursor is not None and not cursor.isdigit():
        raise InvalidInput("cursor: not a cursor this API returned")
    before = int(cursor) if cursor else None
    rows = await handlers.list_audit(deps, principal, limit, before, entity_id, tenant_id)
    return AuditPage(
        items=[AuditOut.model_validate(dict(r)) for r in rows],
        next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None,
    )
