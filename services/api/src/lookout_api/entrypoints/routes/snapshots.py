"""Snapshot requests, jobs, snapshot lists and images."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from lookout_api import handlers
from lookout_api.bootstrap import Deps
from lookout_api.domain import access
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, headers, problems
from lookout_api.entrypoints.ranged_file import file_response
from lookout_api.entrypoints.routes.images import LatestSnapshotScope
from lookout_api.entrypoints.snapshot_schemas import JobAccepted, JobOut, SnapshotOut, SnapshotPage
from lookout_api.ports import Row

router = APIRouter(prefix="/api/v1", tags=["snapshots"], responses=COMMON)

MAX_AGE_LIMIT = 86_400  # a day; an older snapshot is never "fresh"
# Content-addressed: the bytes behind a snapshot's ETag never change.
IMMUTABLE = "private, max-age=31536000, immutable"
# The latest image changes with every capture: revalidate every time (a 304 is cheap).
REVALIDATE = "private, no-cache"
IMAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the image",
        **headers("ETag"),
    },
    206: {"description": "the requested byte range (Content-Range)", **headers("ETag")},
    304: {"description": "If-None-Match or If-Modified-Since matches", **headers("ETag")},
    **problems(416),
}


def snapshot_out(deps: Deps, row: Row) -> SnapshotOut:
    image_url = f"{deps.settings.public_url}/api/v1/snapshots/{row['id']}/image"
    return SnapshotOut.model_validate({**dict(row), "image_url": image_url})


@router.post(
    "/streams/{stream_id}/snapshots",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Request a snapshot (202 and a job, or 200 with a fresh enough one)",
    responses={
        202: headers("Location"),
        200: {"model": SnapshotOut, "description": "a snapshot at most max_age seconds old"},
        **problems(409),
    },
)
async def request_snapshot(
    deps: DepsDep,
    principal: PrincipalDep,
    stream_id: uuid.UUID,
    response: Response,
    max_age: Annotated[
        int | None,
        Query(ge=0, le=MAX_AGE_LIMIT, description="answer 200 with a snapshot this fresh"),
    ] = None,
) -> JobAccepted | JSONResponse:
    result = await handlers.request_snapshot(deps, principal, stream_id, max_age)
    if result.snapshot is not None:
        body = snapshot_out(deps, result.snapshot).model_dump(mode="json")
        return JSONResponse(body, status_code=status.HTTP_200_OK)
    job = result.job
    assert job is not None
    status_url = f"{deps.settings.public_url}/api/v1/jobs/{job['id']}"
    response.headers["Location"] = status_url
    return JobAccepted(
        job_id=job["id"], status=job["status"], status_url=status_url, joined=not result.created
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    response_model_exclude_unset=True,
    tags=["jobs"],
    summary="A snapshot job's state",
)
async def get_job(deps: DepsDep, principal: PrincipalDep, job_id: uuid.UUID) -> JobOut:
    """Viewers receive every field but ``error`` (its category, ``error_category``, they do)."""
    row = await handlers.get_job(deps, principal, job_id)
    return JobOut.model_validate(access.visible(principal, dict(row)))


@router.get(
    "/streams/{stream_id}/snapshots",
    response_model=SnapshotPage,
    summary="List a stream's snapshots",
)
async def list_snapshots(
    deps: DepsDep,
    principal: PrincipalDep,
    stream_id: uuid.UUID,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SnapshotPage:
    page = await handlers.list_snapshots(deps, principal, stream_id, limit, cursor)
    return SnapshotPage(
        items=[snapshot_out(deps, r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/snapshots/{snapshot_id}/image",
    response_class=Response,
    name="get_image",
    summary="A snapshot's image (Range and conditional requests)",
    responses=IMAGE,
)
async def snapshot_image(
    request: Request, deps: DepsDep, principal: PrincipalDep, snapshot_id: uuid.UUID
) -> Response:
    row, path = await handlers.snapshot_file(deps, principal, snapshot_id)
    return _image(request, row, path, IMMUTABLE)


@router.get(
    "/streams/{stream_id}/snapshots/latest/image",
    response_class=Response,
    name="get_latest_image",
    summary="A stream's latest image (Range and conditional requests)",
    responses=IMAGE,
)
async def latest_image(
    request: Request, deps: DepsDep, scope: LatestSnapshotScope, stream_id: uuid.UUID
) -> Response:
    """Also opened by a signed URL (POST /api/v1/streams/{id}/image-urls)."""
    row, path = await handlers.latest_snapshot_file(deps, scope, stream_id)
    return _image(request, row, path, REVALIDATE)


def _image(request: Request, row: Row, path: Any, cache_control: str) -> Response:
    return file_response(
        request.headers,
        path,
        media_type=row["content_type"],
        etag=f'"{row["sha256"]}"',
        last_modified=row["created_at"],
        cache_control=cache_control,
    )
