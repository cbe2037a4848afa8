"""Envelopes the api writes to the outbox, and audit entries written beside them."""

from __future__ import annotations

from collections.abc import Sequence

from lookout_shared.contracts import (
    PROBE_BATCH,
    SNAPSHOT_DELETED_VERSION,
    Payload,
    ProbeStream,
    SnapshotDeleted,
    SnapshotJobState,
    StreamDeleted,
)
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import Principal

from lookout_api.domain import access, streams
from lookout_api.domain.audit import Entry
from lookout_api.domain.rows import Row
from lookout_api.ports import Session

PRODUCER = "api"


def event(message_type: str, payload: Payload, row: Row, version: int | None = None) -> Envelope:
    return make_envelope(
        message_type,
        payload,
        producer=PRODUCER,
        tenant_id=row["tenant_id"],
        entity_id=row["id"],
        entity_version=row["version"] if version is None else version,
    )


def stream_event(message_type: str, row: Row) -> Envelope:
    return event(message_type, streams.state_of(row), row)


def stream_changed(row: Row, *, created: bool, probe: bool) -> list[Envelope]:
    """stream.created/updated, and a stream.probe command when the URL needs probing."""
    out = [stream_event("stream.created" if created else "stream.updated", row)]
    if probe:
        out += probe_commands([row])
    return out


def probe_commands(rows: Sequence[Row]) -> list[Envelope]:
    """stream.probe commands for ``rows``, up to PROBE_BATCH streams each, in their order.

    Every row must belong to one tenant (a bulk write's): the envelope names one tenant, and
    the worker checks each stream against it. The envelope's entity is the first stream.
    """
    tenants = {row["tenant_id"] for row in rows}
    if len(tenants) > 1:
        raise ValueError("one probe command carries the streams of one tenant")
    return [
        event(
            "stream.probe",
            ProbeStream(stream_ids=[row["id"] for row in batch]),
            batch[0],
        )
        for batch in (rows[at : at + PROBE_BATCH] for at in range(0, len(rows), PROBE_BATCH))
    ]


def stream_deleted(row: Row) -> Envelope:
    # The deletion is the stream's next version, so consumers order it after every update.
    return event("stream.deleted", StreamDeleted(), row, version=row["version"] + 1)


def stream_deleted_cascade(jobs: Sequence[Row], snapshots: Sequence[Row]) -> list[Envelope]:
    """What a stream's deletion does to its jobs (failed) and snapshots (deleted), as events,
    so every consumer (the counts above all) sees the rows change or go."""
    failed = [
        event(
            "snapshot_job.failed",
            SnapshotJobState(
                stream_id=j["stream_id"],
                status="failed",
                attempts=j["attempts"],
                error="stream_deleted",  # events carry the category (contracts.py)
            ),
            j,
        )
        for j in jobs
    ]
    # A snapshot is created at version 1; its deletion is version 2.
    gone = [
        event(
            "snapshot.deleted",
            SnapshotDeleted(stream_id=s["stream_id"]),
            s,
            version=SNAPSHOT_DELETED_VERSION,
        )
        for s in snapshots
    ]
    return failed + gone


async def commit(
    session: Session, principal: Principal | None, entries: list[Entry], envelopes: list[Envelope]
) -> None:
    """Write the audit entries and the outbox messages on the caller's transaction."""
    if entries:
        await session.record_audit(access.actor_of(principal), entries)
    if envelopes:
        await session.enqueue(*envelopes)
