"""The latest frame as a resized JPEG (``latest.jpg``), and signed URLs for image routes.

The image routes take either the usual ``Authorization: Bearer`` (token or API key) or a
signed URL's ``exp`` and ``sig`` (domain/signed_urls.py), so an ``<img src>`` works in a
page that holds no credentials. A signed URL opens only the one route and stream it was
made for; every other route ignores ``exp`` and ``sig`` and asks for credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from lookout_shared.signed_urls import Kind

from lookout_api import handlers
from lookout_api.domain import access, frames
from lookout_api.domain.errors import InvalidInput, Unauthorized
from lookout_api.entrypoints.deps import Credentials, DepsDep, PrincipalDep, app_deps, get_principal
from lookout_api.entrypoints.frame_schemas import (
    BatchImageUrlsIn,
    BatchImageUrlsOut,
    ImageUrlsIn,
    ImageUrlsOut,
)
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.ranged_file import http_date, not_modified

router = APIRouter(prefix="/api/v1", tags=["images"], responses=COMMON)

# The latest frame changes all the time: revalidate every time (a 304 is cheap).
REVALIDATE = "private, no-cache"


def image_scope(kind: Kind) -> Callable[..., Awaitable[uuid.UUID | None]]:
    """A dependency: the tenant scope of an image request, from its credentials or, without
    any, from a signed URL made for ``kind`` and this stream."""

    async def scope(request: Request, credentials: Credentials) -> uuid.UUID | None:
        if credentials is not None:
            return access.tenant_filter(await get_principal(request, credentials))
        exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
        if exp is None or sig is None:
            raise Unauthorized(
                "send an access token or API key as 'Authorization: Bearer <token>', "
                "or use a signed URL (POST /api/v1/streams/{id}/image-urls)"
            )
        try:
            stream_id = uuid.UUID(request.path_params["stream_id"])
        except ValueError:
            raise InvalidInput("stream_id: not a UUID") from None
        return await handlers.check_signed(app_deps(request), stream_id, kind, exp, sig)

    return scope


LatestJpgScope = Annotated[uuid.UUID | None, Depends(image_scope("latest_jpg"))]
LatestSnapshotScope = Annotated[uuid.UUID | None, Depends(image_scope("latest_snapshot"))]
JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "the latest frame, resized"},
    304: {"description": "If-None-Match or If-Modified-Since matches"},
}


@router.get("/streams/{stream_id}/latest.jpg", response_class=Response, responses=JPEG)
async def latest_jpg(
    request: Request,
    deps: DepsDep,
    scope: LatestJpgScope,
    stream_id: uuid.UUID,
    width: Annotated[int | None, Query(description="at most this wide (16 to the max)")] = None,
    height: Annotated[int | None, Query(description="at most this high")] = None,
    quality: Annotated[int | None, Query(description="JPEG quality, 30 to 95 (80)")] = None,
    exp: Annotated[str | None, Query(max_length=12, description="a signed URL's expiry")] = None,
    sig: Annotated[str | None, Query(max_length=64, description="a signed URL's signature")] = None,
) -> Response:
    """The stream's latest frame: a hot stream's from its worker, any other's from its
    latest snapshot; never enlarged, aspect ratio kept (both sides given: fits the box).
    ``X-Frame-Source`` says which, ``X-Frame-Age`` how old it is in seconds, and
    ``X-Frame-Offline: true`` flags a frame older than LOOKOUT_FRAME_OFFLINE_SECONDS."""
    settings = deps.settings
    asked = frames.FrameRequest.checked(width, height, quality, settings.frame_max_width)
    frame = await handlers.latest_frame(deps, scope, stream_id, asked)
    captured = datetime.fromtimestamp(frame.captured_at, UTC)
    age = frame.age_seconds
    headers = {
        "ETag": frame.etag,
        "Last-Modified": http_date(captured),
        "Cache-Control": REVALIDATE,
        "X-Frame-Source": frame.source,
        "X-Frame-Age": f"{age:.3f}",
    }
    if frames.is_offline(age, settings.frame_offline_seconds):
        headers["X-Frame-Offline"] = "true"
    if not_modified(request.headers, frame.etag, captured):
        return Response(status_code=304, headers=headers)
    image = await handlers.encoded_frame(deps, frame, asked)
    return Response(image.jpeg, media_type="image/jpeg", headers=headers)


def _out(urls: handlers.SignedUrls) -> ImageUrlsOut:
    return ImageUrlsOut(
        stream_id=urls.stream_id,
        latest_jpg=urls.latest_jpg,
        latest_snapshot=urls.latest_snapshot,
        expires_at=urls.expires_at,
    )


@router.post("/streams/{stream_id}/image-urls", response_model=ImageUrlsOut)
async def image_urls(
    deps: DepsDep, principal: PrincipalDep, stream_id: uuid.UUID, body: ImageUrlsIn
) -> ImageUrlsOut:
    """Signed URLs of the stream's images for any viewer of the stream: anyone holding one
    sees the stream's latest frame until it expires, so keep the TTL short."""
    urls = await handlers.signed_urls_for(
        deps, access.tenant_filter(principal), [stream_id], body.ttl_seconds
    )
    return _out(urls[0])


@router.post("/image-urls", response_model=BatchImageUrlsOut)
async def batch_image_urls(
    deps: DepsDep, principal: PrincipalDep, body: BatchImageUrlsIn
) -> BatchImageUrlsOut:
    """Signed URLs for many streams at once (a grid of tiles); 404 if any is not yours."""
    ids = list(dict.fromkeys(body.stream_ids))
    urls = await handlers.signed_urls_for(
        deps, access.tenant_filter(principal), ids, body.ttl_seconds
    )
    return BatchImageUrlsOut(items=[_out(u) for u in urls])
