"""Tenants: created by a superuser."""

from __future__ import annotations

from fastapi import APIRouter, status

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, problems
from lookout_api.entrypoints.schemas import TenantIn, TenantOut

router = APIRouter(prefix="/api/v1", responses=COMMON)


@router.post(
    "/tenants",
    response_model=TenantOut,
    status_code=status.HTTP_201_CREATED,
    tags=["tenants"],
    summary="Create a tenant",
    responses=problems(409),
)
async def create_tenant(deps: DepsDep, principal: PrincipalDep, body: TenantIn) -> TenantOut:
    row = await handlers.create_tenant(deps, principal, body.name)
    return TenantOut.model_validate(dict(row))
