"""Live counts, as the count-aggregator keeps them in Redis."""

from __future__ import annotations

from fastapi import APIRouter

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.schemas import CountsOut

router = APIRouter(prefix="/api/v1", tags=["counts"], responses=COMMON)


@router.get("/counts", response_model=CountsOut)
async def counts(deps: DepsDep, principal: PrincipalDep) -> CountsOut:
    scope = "platform" if principal.is_superuser else str(principal.tenant_id)
    return CountsOut(scope=scope, counts=await handlers.counts(deps, principal))
