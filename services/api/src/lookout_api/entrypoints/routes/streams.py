"""Streams: create, read, change, delete, with ETags and conditional requests."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from lookout_api import handlers
from lookout_api.domain import access, etags
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, headers, problems
from lookout_api.entrypoints.stream_schemas import StreamIn, StreamOut, StreamPatch

router = APIRouter(prefix="/api/v1/streams", tags=["streams"], responses=COMMON)

IfMatch = Annotated[
    str | None, Header(description="an ETag of this stream: refuse (412) if it changed since")
]


def _tagged(out: StreamOut, response: Response) -> StreamOut:
    response.headers["ETag"] = etags.etag(out.id, out.version)
    return out


@router.post(
    "",
    response_model=StreamOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a stream",
    responses={201: headers("ETag", "Location")},
)
async def create_stream(
    deps: DepsDep, principal: PrincipalDep, body: StreamIn, response: Response
) -> StreamOut:
    row = await handlers.create_stream(
        deps,
        principal,
        name=body.name,
        url=body.url,
        tags=body.tags,
        enabled=body.enabled,
        tenant_id=body.tenant_id,
    )
    response.headers["Location"] = f"/api/v1/streams/{row['id']}"
    return _tagged(StreamOut.of(row), response)


@router.get(
    "/{stream_id}",
    response_model=StreamOut,
    summary="Read a stream",
    responses={
        200: headers("ETag"),
        304: {"description": "If-None-Match names the current ETag", **headers("ETag")},
    },
)
async def get_stream(
    deps: DepsDep,
    principal: PrincipalDep,
    stream_id: uuid.UUID,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Viewers receive every field but ``url`` and ``last_error`` (they get
    ``last_error_category``). Served from the read cache when it can be
    (entrypoints/cached_reads.py)."""
    row = await handlers.get_stream(deps, principal, stream_id)
    headers = {"ETag": etags.etag(stream_id, row["version"])}
    if etags.none_match(if_none_match, stream_id, row["version"]):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    body = StreamOut.of(row, access.visible_fields(principal)).model_dump_json(exclude_unset=True)
    return Response(body, media_type="application/json", headers=headers)


@router.patch(
    "/{stream_id}",
    response_model=StreamOut,
    summary="Change a stream's fields (If-Match: refuse if it changed)",
    responses={200: headers("ETag"), **problems(412)},
)
async def update_stream(
    deps: DepsDep,
    principal: PrincipalDep,
    stream_id: uuid.UUID,
    body: StreamPatch,
    response: Response,
    if_match: IfMatch = None,
) -> StreamOut:
    row = await handlers.update_stream(
        deps, principal, stream_id, body.changes(), etags.expected_version(if_match, stream_id)
    )
    return _tagged(StreamOut.of(row), response)


@router.delete(
    "/{stream_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a stream (If-Match: refuse if it changed)",
    responses=problems(412),
)
async def delete_stream(
    deps: DepsDep, principal: PrincipalDep, stream_id: uuid.UUID, if_match: IfMatch = None
) -> Response:
    await handlers.delete_stream(
        deps, principal, stream_id, etags.expected_version(if_match, stream_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
