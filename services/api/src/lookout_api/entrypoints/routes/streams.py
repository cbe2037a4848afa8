"""Streams: create, read, list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from lookout_api import handlers
from lookout_api.domain.errors import InvalidInput
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.schemas import StreamIn, StreamOut, StreamPage

router = APIRouter(prefix="/api/v1/streams", tags=["streams"])


def etag(row: StreamOut) -> str:
    return f'"{row.id}.{row.version}"'


@router.post("", response_model=StreamOut, status_code=status.HTTP_201_CREATED)
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
    out = StreamOut.of(row)
    response.headers["Location"] = f"/api/v1/streams/{out.id}"
    response.headers["ETag"] = etag(out)
    return out


@router.get("/{stream_id}", response_model=StreamOut)
async def get_stream(
    deps: DepsDep, principal: PrincipalDep, stream_id: uuid.UUID, response: Response
) -> StreamOut:
    out = StreamOut.of(await handlers.get_stream(deps, principal, stream_id))
    response.headers["ETag"] = etag(out)
    return out


@router.get("", response_model=StreamPage)
async def list_streams(
    deps: DepsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamPage:
    rows = await handlers.list_streams(deps, principal, limit, decode_cursor(cursor))
    items = [StreamOut.of(r) for r in rows]
    last = items[-1] if len(items) == limit else None
    return StreamPage(
        items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
    )


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, row_id = raw.split("|", 1)
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned") from None
