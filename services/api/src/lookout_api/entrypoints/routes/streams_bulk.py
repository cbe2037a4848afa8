"""Bulk create-or-update of streams in one transaction."""

from __future__ import annotations

from fastapi import APIRouter
from lookout_shared.stream_urls import mask_credentials

from lookout_api import handlers
from lookout_api.domain.listing import FIELDS
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.responses import OrjsonResponse
from lookout_api.entrypoints.stream_schemas import BulkIn, BulkOut

router = APIRouter(prefix="/api/v1", tags=["streams"], responses=COMMON)


@router.post(
    "/streams:bulk",
    response_model=BulkOut,
    response_class=OrjsonResponse,
    summary="Create or change up to 500 streams at once",
)
async def bulk_upsert(deps: DepsDep, principal: PrincipalDep, body: BulkIn) -> OrjsonResponse:
    """Up to 500 items; one invalid item writes nothing (422, one error per bad item).

    The body is the rows as the stream list serves them (``StreamOut``'s fields, the url
    masked), encoded by orjson: building and validating 500 ``StreamOut`` models only to
    serialise them again was a good part of a bulk request's time.
    """
    items = [handlers.BulkItem(item.id, item.changes(), item.version) for item in body.items]
    results = await handlers.bulk_upsert(deps, principal, items, body.tenant_id)
    return OrjsonResponse(
        {
            "items": [
                {
                    "index": i,
                    "action": r.action,
                    "stream": {
                        f: mask_credentials(r.row[f]) if f == "url" else r.row[f] for f in FIELDS
                    },
                }
                for i, r in enumerate(results)
            ]
        }
    )
