"""JobStore and StreamStore on Postgres; every write and its events share one transaction.

Updates are guarded by the row's version (and a job's unfinished status), so a write based
on a stale read changes nothing and the caller decides what that means.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence

import asyncpg
from lookout_shared.db import Conn
from lookout_shared.envelope import Envelope
from lookout_shared.outbox import enqueue
from lookout_shared.streams import column_list

from lookout_snapshot_worker.adapters.reaper import KEY_LOCK
from lookout_snapshot_worker.domain.breaker import CLOSED, BreakerState
from lookout_snapshot_worker.domain.events import snapshot_deleted
from lookout_snapshot_worker.domain.hot import HotStream
from lookout_snapshot_worker.domain.jobs import Job, Snapshot
from lookout_snapshot_worker.domain.streams import Stream
from lookout_snapshot_worker.ports import FileStore, LoadedJob, Pruned

_UPDATE_JOB = """
UPDATE snapshot_jobs
   SET status = $3, attempts = $4, error = $5, snapshot_id = $6, version = $7,
       started_at = $8, finished_at = $9, error_category = $10
 WHERE id = $1 AND version = $2 AND status IN ('queued', 'running')
"""


# Serialises snapshot inserts of one stream, so retention counts a settled set of rows.
_STREAM_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('snapshots-of:' || $1::uuid::text, 0))"
)

# The one place retention is enforced: everything but the stream's newest ``keep`` rows.
_PRUNE = """
DELETE FROM snapshots
 WHERE id IN (SELECT id FROM snapshots WHERE stream_id = $1
               ORDER BY created_at DESC, id DESC OFFSET $2)
   AND id <> $3
RETURNING id, tenant_id, storage_key
"""


class FileVanished(Exception):
    """The file was deleted (its last row pruned) between the write and the insert; the
    command is requeued and the capture runs again."""


class PostgresJobStore:
    def __init__(self, pool: asyncpg.Pool, files: FileStore, producer: str) -> None:
        self._pool = pool
        self._files = files
        self._producer = producer

    async def load(self, job_id: uuid.UUID) -> LoadedJob | None:
        row = await self._pool.fetchrow(
            """SELECT j.id, j.tenant_id, j.stream_id, j.status, j.attempts, j.version, j.error,
                      j.error_category, j.snapshot_id, j.started_at, j.finished_at, s.url, s.hot
                 FROM snapshot_jobs j JOIN streams s ON s.id = j.stream_id
                WHERE j.id = $1""",
            job_id,
        )
        if row is None:
            return None
        job = Job(
            id=row["id"], tenant_id=row["tenant_id"], stream_id=row["stream_id"],
            status=row["status"], attempts=row["attempts"], version=row["version"],
            error=row["error"], error_category=row["error_category"],
            snapshot_id=row["snapshot_id"], started_at=row["started_at"],
            finished_at=row["finished_at"],
        )  # fmt: skip
        return LoadedJob(job, row["url"], row["hot"])

    async def save(self, job: Job, expected_version: int, events: Sequence[Envelope]) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await _update_job(conn, job, expected_version):
                return False
            await enqueue(conn, *events)
        return True

    async def save_with_snapshot(
        self,
        job: Job,
        expected_version: int,
        snapshot: Snapshot,
        events: Sequence[Envelope],
        keep: int,
    ) -> tuple[Pruned, ...] | None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if not await _update_job(conn, job, expected_version):
                    return None
                await conn.execute(_STREAM_LOCK, snapshot.stream_id)
                # A reaper holding this lock may have just deleted the file (shared key).
                await conn.execute(KEY_LOCK, snapshot.storage_key)
                if not self._files.exists(snapshot.storage_key):
                    raise FileVanished(snapshot.storage_key)
                # clock_timestamp(), not now(): taken after the lock, so the newest row is
                # the last one committed, whichever transaction began first.
                inserted = await conn.fetchval(
                    """INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key,
                                              content_type, size_bytes, sha256, width, height,
                                              created_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock_timestamp())
                       ON CONFLICT (job_id) DO NOTHING RETURNING id""",
                    snapshot.id, snapshot.tenant_id, snapshot.stream_id, snapshot.job_id,
                    snapshot.storage_key, snapshot.content_type, snapshot.size_bytes,
                    snapshot.sha256, snapshot.width, snapshot.height,
                )  # fmt: skip
                if inserted is None:
                    # The job already has its snapshot: undo the update, finish nothing twice.
                    raise _AlreadyHasSnapshot
                rows = await conn.fetch(_PRUNE, snapshot.stream_id, keep, snapshot.id)
                deleted = [
                    snapshot_deleted(r["id"], r["tenant_id"], snapshot.stream_id, self._producer)
                    for r in rows
                ]
                await enqueue(conn, *events, *deleted)
        except _AlreadyHasSnapshot:
            return None
        return tuple(Pruned(r["id"], r["storage_key"]) for r in rows)


class _AlreadyHasSnapshot(Exception):
    pass


async def _update_job(conn: Conn, job: Job, expected_version: int) -> bool:
    status: str = await conn.execute(
        _UPDATE_JOB, job.id, expected_version, job.status, job.attempts, job.error,
        job.snapshot_id, job.version, job.started_at, job.finished_at, job.error_category,
    )  # fmt: skip
    return status == "UPDATE 1"


# The columns the probe works on: one per field of the domain's Stream.
STREAM_COLUMNS = column_list(f.name for f in dataclasses.fields(Stream))


class PostgresStreamStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, stream_id: uuid.UUID) -> Stream | None:
        row = await self._pool.fetchrow(
            f"SELECT {STREAM_COLUMNS} FROM streams WHERE id = $1",
            stream_id,
        )
        if row is None:
            return None
        return Stream(**{key: row[key] for key in row.keys()})  # noqa: SIM118

    async def save(self, stream: Stream, expected_version: int, events: Sequence[Envelope]) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            status: str = await conn.execute(
                """UPDATE streams
                      SET width = $3, height = $4, codec = $5, status = $6, last_error = $7,
                          version = $8, updated_at = $9, fps = $10, last_error_category = $11
                    WHERE id = $1 AND version = $2""",
                stream.id, expected_version, stream.width, stream.height, stream.codec,
                stream.status, stream.last_error, stream.version, stream.updated_at, stream.fps,
                stream.last_error_category,
            )  # fmt: skip
            if status != "UPDATE 1":
                return False
            await enqueue(conn, *events)
        return True


class PostgresBreakerStore:
    """Circuit-breaker state per stream (see domain/breaker.py), in ``stream_breakers``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, stream_id: uuid.UUID) -> BreakerState:
        row = await self._pool.fetchrow(
            "SELECT failures, trips, open_until, last_error FROM stream_breakers"
            " WHERE stream_id = $1",
            stream_id,
        )
        return CLOSED if row is None else BreakerState(**dict(row))

    async def update(
        self, stream_id: uuid.UUID, change: Callable[[BreakerState], BreakerState]
    ) -> tuple[BreakerState, BreakerState]:
        async with self._pool.acquire() as conn, conn.transaction():
            # Create the row if needed, then lock it: concurrent failures count one by one.
            await conn.execute(
                """INSERT INTO stream_breakers (stream_id) SELECT id FROM streams WHERE id = $1
                   ON CONFLICT (stream_id) DO NOTHING""",
                stream_id,
            )
            row = await conn.fetchrow(
                "SELECT failures, trips, open_until, last_error FROM stream_breakers"
                " WHERE stream_id = $1 FOR UPDATE",
                stream_id,
            )
            if row is None:  # the stream is gone
                return CLOSED, CLOSED
            before = BreakerState(**dict(row))
            after = change(before)
            await conn.execute(
                """UPDATE stream_breakers SET failures = $2, trips = $3, open_until = $4,
                          last_error = $5, updated_at = now()
                    WHERE stream_id = $1""",
                stream_id, after.failures, after.trips, after.open_until, after.last_error,
            )  # fmt: skip
        return before, after

    async def close(self, stream_id: uuid.UUID) -> None:
        await self._pool.execute("DELETE FROM stream_breakers WHERE stream_id = $1", stream_id)


class PostgresHotStreams:
    """The hot set, read again every tick (an index covers it: few streams are hot)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hot_streams(self) -> list[HotStream]:
        rows = await self._pool.fetch(
            "SELECT id, tenant_id, url, hot_mode FROM streams WHERE hot AND enabled"
        )
        return [HotStream(r["id"], r["tenant_id"], r["url"], r["hot_mode"]) for r in rows]
