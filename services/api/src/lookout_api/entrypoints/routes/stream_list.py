"""The stream list: keyset cursor (or offset/page), sort, filters, search, sparse fields."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from lookout_shared.contracts import StreamStatus
from lookout_shared.stream_urls import mask_credentials
from lookout_shared.streams import Sort

from lookout_api import handlers
from lookout_api.domain import access, listing
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, headers
from lookout_api.entrypoints.responses import OrjsonResponse
from lookout_api.entrypoints.schemas import degraded_headers
from lookout_api.entrypoints.stream_schemas import StreamPage

router = APIRouter(prefix="/api/v1/streams", tags=["streams"], responses=COMMON)

Kind = Literal["rtsp", "rtmp", "hls", "http", "file"]


@router.get(
    "",
    response_model=StreamPage,
    response_class=OrjsonResponse,
    summary="List streams (cursor pages, sort, filters, search, sparse fields)",
    responses={200: headers("X-Lookout-Degraded")},
)
async def list_streams(
    deps: DepsDep,
    principal: PrincipalDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    offset: Annotated[int | None, Query(ge=0, description="compatibility; prefer cursor")] = None,
    page: Annotated[int | None, Query(ge=1, description="compatibility; prefer cursor")] = None,
    sort: Annotated[Sort, Query(description="'-' = descending")] = "-created_at",
    status: StreamStatus | None = None,
    kind: Kind | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="search in names")
    ] = None,
    fields: Annotated[
        str | None,
        Query(max_length=500, description=f"comma-separated: {','.join(listing.FIELDS)}"),
    ] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="superusers only")] = None,
) -> OrjsonResponse:
    """Viewers receive every field but ``url`` and ``last_error`` (asking for them with
    ``fields=`` is ignored); they get ``last_error_category``. Served
    from the read cache when it can be (entrypoints/cached_reads.py);
    ``X-Lookout-Degraded: redis`` says Redis was down and Postgres answered."""
    order = listing.Sort.parse(sort)
    query = listing.StreamQuery(
        filter=listing.StreamFilter(tenant_id, status, kind, tag and tag.lower(), q),
        sort=order,
        limit=limit,
        after=listing.decode_cursor(cursor, order) if cursor else None,
        offset=listing.page_offset(offset, page, limit, cursor),
    )
    wanted = access.visible_fields(principal, listing.parse_fields(fields))
    result = await handlers.list_streams(deps, principal, query)
    request.state.cache_watch = result.watched
    request.state.cache_counts_epoch = result.counts_epoch
    last = result.rows[-1] if len(result.rows) == limit else None
    return OrjsonResponse(
        {
            "items": [
                {f: mask_credentials(row[f]) if f == "url" else row[f] for f in wanted}
                for row in result.rows
            ],
            "next_cursor": listing.encode_cursor(order, last[order.key], last["id"])
            if last
            else None,
            "total": result.total,
            "total_is_exact": result.total_is_exact,
            "total_source": result.total_source,
        },
        headers=degraded_headers(result.degraded),
    )
