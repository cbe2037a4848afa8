"""Snapshot requests, jobs and images."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import FileResponse

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, problems
from lookout_api.entrypoints.schemas import JobAccepted, JobOut

router = APIRouter(prefix="/api/v1", tags=["snapshots"], responses=COMMON)


@router.post(
    "/streams/{stream_id}/snapshots",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(409),
)
async def request_snapshot(
    deps: DepsDep, principal: PrincipalDep, stream_id: uuid.UUID, response: Response
) -> JobAccepted:
    job, created = await handlers.request_snapshot(deps, principal, stream_id)
    status_url = f"{deps.settings.public_url}/api/v1/jobs/{job['id']}"
    response.headers["Location"] = status_url
    return JobAccepted(
        job_id=job["id"], status=job["status"], status_url=status_url, joined=not created
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(deps: DepsDep, principal: PrincipalDep, job_id: uuid.UUID) -> JobOut:
    return JobOut.model_validate(dict(await handlers.get_job(deps, principal, job_id)))


@router.get(
    "/snapshots/{snapshot_id}/image",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def snapshot_image(
    deps: DepsDep, principal: PrincipalDep, snapshot_id: uuid.UUID
) -> FileResponse:
    row, path = await handlers.snapshot_file(deps, principal, snapshot_id)
    return _image(row["content_type"], path, row["sha256"])


@router.get(
    "/streams/{stream_id}/snapshots/latest/image",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def latest_image(
    deps: DepsDep, principal: PrincipalDep, stream_id: uuid.UUID
) -> FileResponse:
    row, path = await handlers.latest_snapshot_file(deps, principal, stream_id)
    return _image(row["content_type"], path, row["sha256"])


def _image(content_type: str, path: object, sha256: str) -> FileResponse:
    # Content-addressed: the bytes behind an ETag never change.
    return FileResponse(
        str(path),
        media_type=content_type,
        headers={"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"},
    )
