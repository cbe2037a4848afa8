"""Snapshot requests, jobs, snapshot lists and images."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lookout_shared.contracts import CaptureSnapshot, SnapshotJobState
from lookout_shared.tokens import Principal

from lookout_api.domain import access
from lookout_api.domain.errors import Conflict, NotFound
from lookout_api.domain.listing import Sort, decode_cursor, encode_cursor
from lookout_api.handlers.outbox_writes import event
from lookout_api.handlers.quotas import count_snapshot_request
from lookout_api.ports import Deps, MissingReference, Row

# Newest first; ties (same created_at) go by id, the order of the snapshots index.
SNAPSHOT_SORT = Sort("created_at", descending=True)


@dataclass(frozen=True)
class SnapshotRequest:
    """Either a fresh enough snapshot (nothing queued) or the job that will take one."""

    snapshot: Row | None = None
    job: Row | None = None
    created: bool = False  # the job is new (False: the request joined an active job)


@dataclass(frozen=True)
class SnapshotPage:
    items: list[Row]
    next_cursor: str | None


async def request_snapshot(
    deps: Deps, principal: Principal, stream_id: uuid.UUID, max_age: int | None = None
) -> SnapshotRequest:
    """A snapshot at most ``max_age`` seconds old if there is one; otherwise queue a
    capture, or join the stream's active job. Never waits for ffmpeg.

    Only requests that queue or join a job count against the tenant's per-minute quota.
    """
    access.require_role(principal, "operator")
    async with deps.db.connect() as session:
        scope = access.tenant_filter(principal)
        stream = await session.stream_for_request(stream_id, scope)
        if stream is None:
            raise NotFound("no such stream")
        if max_age is not None:
            fresh = await session.fresh_snapshot(stream_id, max_age)
            if fresh is not None:
                return SnapshotRequest(snapshot=fresh)
        if not stream["enabled"]:
            raise Conflict("the stream is disabled; enable it to take snapshots")
        await count_snapshot_request(deps, stream["tenant_id"], stream)
        async with session.transaction():
            try:
                job, created = await session.insert_job_or_join(stream["tenant_id"], stream_id)
            except MissingReference:  # deleted since we read it
                raise NotFound("no such stream") from None
            if created:
                command = CaptureSnapshot(job_id=job["id"], stream_id=stream_id)
                queued = SnapshotJobState(stream_id=stream_id, status="queued")
                await session.enqueue(
                    event("snapshot.capture", command, job),
                    event("snapshot_job.queued", queued, job),
                )
    return SnapshotRequest(job=job, created=created)


async def get_job(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Row:
    async with deps.db.connect() as session:
        row = await session.get_job(job_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such job")
    return row


async def list_snapshots(
    deps: Deps, principal: Principal, stream_id: uuid.UUID, limit: int, cursor: str | None
) -> SnapshotPage:
    after: tuple[datetime, uuid.UUID] | None = None
    if cursor is not None:
        position = decode_cursor(cursor, SNAPSHOT_SORT)
        assert isinstance(position.value, datetime)  # a created_at cursor holds a timestamp
        after = (position.value, position.row_id)
    async with deps.db.connect() as session:
        stream = await session.get_stream(stream_id, access.tenant_filter(principal))
        if stream is None:
            raise NotFound("no such stream")
        rows = await session.list_snapshots(
            stream_id,
            limit + 1,  # one more than asked says whether there is a next page
            after,
        )
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(SNAPSHOT_SORT, last["created_at"], last["id"])
    return SnapshotPage(items, next_cursor)


async def snapshot_file(
    deps: Deps, principal: Principal, snapshot_id: uuid.UUID
) -> tuple[Row, Path]:
    async with deps.db.connect() as session:
        row = await session.get_snapshot(snapshot_id, access.tenant_filter(principal))
    return _file_of(deps, row)


async def latest_snapshot_file(
    deps: Deps, scope: uuid.UUID | None, stream_id: uuid.UUID
) -> tuple[Row, Path]:
    """The stream's latest snapshot in the tenant ``scope`` (None: any)."""
    async with deps.db.connect() as session:
        row = await session.latest_snapshot(stream_id, scope)
    return _file_of(deps, row)


def _file_of(deps: Deps, row: Row | None) -> tuple[Row, Path]:
    if row is None:
        raise NotFound("no such snapshot")
    path = deps.storage.path_of(row["storage_key"])
    if not path.is_file():
        raise NotFound("the snapshot's file is missing from storage")
    return row, path
