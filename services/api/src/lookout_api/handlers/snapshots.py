"""Snapshot requests, jobs and images."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
from lookout_shared import outbox
from lookout_shared.contracts import CaptureSnapshot, SnapshotJobState
from lookout_shared.tokens import Principal

from lookout_api.adapters import snapshots_db, streams_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import access
from lookout_api.domain.errors import Conflict, NotFound
from lookout_api.handlers.events import event


async def request_snapshot(
    deps: Deps, principal: Principal, stream_id: uuid.UUID
) -> tuple[asyncpg.Record, bool]:
    """Queue a capture, or join the stream's active job. Never waits for ffmpeg."""
    access.require_role(principal, "operator")
    async with deps.pool.acquire() as conn, conn.transaction():
        stream = await streams_db.get_stream(conn, stream_id, access.tenant_filter(principal))
        if stream is None:
            raise NotFound("no such stream")
        if not stream["enabled"]:
            raise Conflict("the stream is disabled; enable it to take snapshots")
        job, created = await snapshots_db.insert_job_or_join(conn, stream["tenant_id"], stream_id)
        if created:
            command = CaptureSnapshot(job_id=job["id"], stream_id=stream_id)
            queued = SnapshotJobState(stream_id=stream_id, status="queued")
            await outbox.enqueue(
                conn,
                event("snapshot.capture", command, job),
                event("snapshot_job.queued", queued, job),
            )
    return job, created


async def get_job(deps: Deps, principal: Principal, job_id: uuid.UUID) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.get_job(conn, job_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such job")
    return row


async def snapshot_file(
    deps: Deps, principal: Principal, snapshot_id: uuid.UUID
) -> tuple[asyncpg.Record, Path]:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.get_snapshot(conn, snapshot_id, access.tenant_filter(principal))
    return _file_of(deps, row)


async def latest_snapshot_file(
    deps: Deps, principal: Principal, stream_id: uuid.UUID
) -> tuple[asyncpg.Record, Path]:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.latest_snapshot(conn, stream_id, access.tenant_filter(principal))
    return _file_of(deps, row)


def _file_of(deps: Deps, row: asyncpg.Record | None) -> tuple[asyncpg.Record, Path]:
    if row is None:
        raise NotFound("no such snapshot")
    path = deps.storage.path_of(row["storage_key"])
    if not path.is_file():
        raise NotFound("the snapshot's file is missing from storage")
    return row, path
