"""The events a job or stream change causes, as envelopes ready for the outbox."""

from __future__ import annotations

import uuid

from lookout_shared.contracts import (
    SNAPSHOT_CREATED_VERSION,
    SNAPSHOT_DELETED_VERSION,
    SnapshotCreated,
    SnapshotDeleted,
    SnapshotJobState,
    StreamState,
)
from lookout_shared.envelope import Envelope, make_envelope

from lookout_snapshot_worker.domain.jobs import Job, Snapshot
from lookout_snapshot_worker.domain.streams import Stream

# The event a job emits on entering each status (a job enters "running" by starting).
JOB_EVENTS = {
    "queued": "snapshot_job.queued",
    "running": "snapshot_job.started",
    "succeeded": "snapshot_job.succeeded",
    "failed": "snapshot_job.failed",
}


def job_event(job: Job, producer: str, snapshot: Snapshot | None = None) -> Envelope:
    """The event of the job's current status, carrying the job as it is now (and, once it
    succeeded, the snapshot's size and how long the job ran)."""
    duration_ms = None
    if job.finished and job.started_at is not None and job.finished_at is not None:
        duration_ms = round((job.finished_at - job.started_at).total_seconds() * 1000)
    payload = SnapshotJobState(
        stream_id=job.stream_id,
        status=job.status,
        attempts=job.attempts,
        error=job.error_category,  # the detail stays in Postgres, for operators
        snapshot_id=job.snapshot_id,
        bytes=snapshot.size_bytes if snapshot else None,
        width=snapshot.width if snapshot else None,
        height=snapshot.height if snapshot else None,
        duration_ms=duration_ms,
    )
    return make_envelope(
        JOB_EVENTS[job.status],
        payload,
        producer=producer,
        tenant_id=job.tenant_id,
        entity_id=job.id,
        entity_version=job.version,
    )


def snapshot_created(snapshot: Snapshot, producer: str) -> Envelope:
    payload = SnapshotCreated(
        stream_id=snapshot.stream_id,
        job_id=snapshot.job_id,
        content_type=snapshot.content_type,
        size_bytes=snapshot.size_bytes,
        width=snapshot.width,
        height=snapshot.height,
    )
    return make_envelope(
        "snapshot.created",
        payload,
        producer=producer,
        tenant_id=snapshot.tenant_id,
        entity_id=snapshot.id,
        entity_version=SNAPSHOT_CREATED_VERSION,
    )


def snapshot_deleted(
    snapshot_id: uuid.UUID, tenant_id: uuid.UUID, stream_id: uuid.UUID, producer: str
) -> Envelope:
    return make_envelope(
        "snapshot.deleted",
        SnapshotDeleted(stream_id=stream_id),
        producer=producer,
        tenant_id=tenant_id,
        entity_id=snapshot_id,
        entity_version=SNAPSHOT_DELETED_VERSION,
    )


def stream_updated(stream: Stream, producer: str) -> Envelope:
    payload = StreamState(
        name=stream.name,
        kind=stream.kind,
        status=stream.status,
        enabled=stream.enabled,
        tags=list(stream.tags),
        width=stream.width,
        height=stream.height,
        codec=stream.codec,
        fps=stream.fps,
    )
    return make_envelope(
        "stream.updated",
        payload,
        producer=producer,
        tenant_id=stream.tenant_id,
        entity_id=stream.id,
        entity_version=stream.version,
    )
