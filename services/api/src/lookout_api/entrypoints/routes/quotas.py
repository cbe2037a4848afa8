"""Tenant quotas: a superuser reads and sets any tenant's, an admin reads their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from lookout_api import handlers
from lookout_api.entrypoints.deps import CheckedPrincipalDep, DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.snapshot_schemas import QuotasIn, QuotasOut

router = APIRouter(prefix="/api/v1", tags=["quotas"], responses=COMMON)


@router.get(
    "/tenants/{tenant_id}/quotas", response_model=QuotasOut, summary="A tenant's quotas and usage"
)
async def get_quotas(
    deps: DepsDep, principal: CheckedPrincipalDep, tenant_id: uuid.UUID
) -> QuotasOut:
    return QuotasOut.of(await handlers.get_quota_usage(deps, principal, tenant_id))


@router.patch(
    "/tenants/{tenant_id}/quotas", response_model=QuotasOut, summary="Change a tenant's quotas"
)
async def set_quotas(
    deps: DepsDep, principal: PrincipalDep, tenant_id: uuid.UUID, body: QuotasIn
) -> QuotasOut:
    values = body.model_dump(exclude_unset=True)
    return QuotasOut.of(await handlers.set_quotas(deps, principal, tenant_id, values))
