"""Bulk create-or-update of streams in one transaction."""

from __future__ import annotations

from fastapi import APIRouter

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.stream_schemas import BulkIn, BulkItemOut, BulkOut, StreamOut

router = APIRouter(prefix="/api/v1", tags=["streams"], responses=COMMON)


@router.post(
    "/streams:bulk", response_model=BulkOut, summary="Create or change up to 500 streams at once"
)
async def bulk_upsert(deps: DepsDep, principal: PrincipalDep, body: BulkIn) -> BulkOut:
    """Up to 500 items; one invalid item writes nothing (422, one error per bad item)."""
    items = [handlers.BulkItem(item.id, item.changes(), item.version) for item in body.items]
    results = await handlers.bulk_upsert(deps, principal, items, body.tenant_id)
    return BulkOut(
        items=[
            BulkItemOut(index=i, action=r.action, stream=StreamOut.of(r.row))
            for i, r in enumerate(results)
        ]
    )
