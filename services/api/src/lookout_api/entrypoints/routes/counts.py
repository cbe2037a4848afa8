"""Live counts, as the count-aggregator keeps them in Redis."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, headers
from lookout_api.entrypoints.schemas import CountsOut, degraded_headers

router = APIRouter(prefix="/api/v1", tags=["counts"], responses=COMMON)


@router.get(
    "/counts",
    response_model=CountsOut,
    name="get_counts",
    summary="Live counts of the tenant (or the platform)",
    responses={200: headers("X-Lookout-Degraded")},
)
async def counts(
    deps: DepsDep, principal: PrincipalDep, request: Request, response: Response
) -> CountsOut:
    """The tenant's counts; a superuser's cover the platform. ``source: sql`` (and, when Redis
    is down or slow, ``X-Lookout-Degraded: redis``) when Postgres counted them."""
    result = await handlers.counts(deps, principal)
    # Kept in the process's read cache only when the aggregator's counts answered: nothing
    # would tell it when SQL counts change (entrypoints/cached_reads.py).
    request.state.cache_keep = result.source == "counts"
    response.headers.update(degraded_headers(result.degraded))
    scope = "platform" if result.scope is None else str(result.scope)
    return CountsOut(scope=scope, counts=result.values, source=result.source)
