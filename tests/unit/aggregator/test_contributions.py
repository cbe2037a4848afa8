"""The counting rules: what each event leaves its entity contributing, and the handler."""

from __future__ import annotations

import uuid

import pytest
from lookout_count_aggregator.adapters.memory import InMemoryCountStore, RecordingSink
from lookout_count_aggregator.domain.contributions import (
    UnusableEvent,
    contribution_of,
    resolution_class,
)
from lookout_count_aggregator.handlers.entity_events import apply_entity_event
from lookout_shared import contracts
from lookout_shared.broker import PermanentFailure
from lookout_shared.envelope import Envelope, make_envelope

TENANT = uuid.uuid4()


def stream_event(
    verb: str = "created",
    *,
    status: contracts.StreamStatus = "pending",
    height: int | None = None,
    tags: list[str] | None = None,
    entity_id: uuid.UUID | None = None,
    version: int = 1,
) -> Envelope:
    payload: contracts.Payload = (
        contracts.StreamDeleted()
        if verb == "deleted"
        else contracts.StreamState(
            name="cam", kind="rtsp", status=status, enabled=True, tags=tags or [], height=height
        )
    )
    return make_envelope(
        f"stream.{verb}",
        payload,
        producer="tests",
        tenant_id=TENANT,
        entity_id=entity_id or uuid.uuid4(),
        entity_version=version,
    )


@pytest.mark.parametrize(
    ("height", "expected"),
    [
        (None, "unknown"),
        (0, "sd"),
        (480, "sd"),
        (719, "sd"),
        (720, "hd"),
        (1079, "hd"),
        (1080, "fhd"),
        (2159, "fhd"),
        (2160, "uhd"),
        (4320, "uhd"),
    ],
)
def test_resolution_class_follows_height(height: int | None, expected: str) -> None:
    assert resolution_class(height) == expected


def test_stream_contributes_total_status_kind_resolution_and_each_tag() -> None:
    event = stream_event(status="online", height=1080, tags=["door", "yard"], version=3)
    c = contribution_of(event)
    assert (c.entity_type, c.entity_id, c.tenant_id, c.version) == (
        "stream",
        event.entity_id,
        TENANT,
        3,
    )
    assert c.fields == {
        "streams_total",
        "streams_status:online",
        "streams_kind:rtsp",
        "streams_resolution:fhd",
        "streams_tag:door",
        "streams_tag:yard",
    }


def test_stream_without_height_is_unknown_resolution() -> None:
    assert "streams_resolution:unknown" in contribution_of(stream_event()).fields


def test_deleted_stream_contributes_nothing() -> None:
    c = contribution_of(stream_event("deleted"))
    assert c.fields == frozenset()
    assert c.deleted


def test_snapshot_events() -> None:
    stream, job, snap = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    created = make_envelope(
        "snapshot.created",
        contracts.SnapshotCreated(
            stream_id=stream, job_id=job, content_type="image/jpeg", size_bytes=10
        ),
        producer="tests",
        tenant_id=TENANT,
        entity_id=snap,
        entity_version=1,
    )
    deleted = make_envelope(
        "snapshot.deleted",
        contracts.SnapshotDeleted(stream_id=stream),
        producer="tests",
        tenant_id=TENANT,
        entity_id=snap,
        entity_version=2,
    )
    assert contribution_of(created).fields == {"snapshots_total"}
    assert contribution_of(created).entity_type == "snapshot"
    assert contribution_of(deleted).fields == frozenset()


@pytest.mark.parametrize(
    ("verb", "status"),
    [
        ("queued", "queued"),
        ("started", "running"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
    ],
)
def test_job_events_count_the_payload_status(verb: str, status: contracts.JobStatus) -> None:
    event = make_envelope(
        f"snapshot_job.{verb}",
        contracts.SnapshotJobState(stream_id=uuid.uuid4(), status=status),
        producer="tests",
        tenant_id=TENANT,
        entity_id=uuid.uuid4(),
        entity_version=2,
    )
    c = contribution_of(event)
    assert c.entity_type == "snapshot_job"
    assert c.fields == {f"jobs_status:{status}"}


def test_event_without_tenant_is_unusable() -> None:
    event = stream_event().model_copy(update={"tenant_id": None})
    with pytest.raises(UnusableEvent, match="no tenant_id"):
        contribution_of(event)


def test_uncounted_event_type_is_unusable() -> None:
    event = make_envelope(
        "counts.changed",
        contracts.CountsChanged(scope=str(TENANT), changes={}),
        producer="tests",
        tenant_id=TENANT,
        entity_id=TENANT,
        entity_version=1,
    )
    with pytest.raises(UnusableEvent):
        contribution_of(event)


async def test_handler_dead_letters_an_unusable_event() -> None:
    store, sink = InMemoryCountStore(), RecordingSink()
    with pytest.raises(PermanentFailure, match="no tenant_id"):
        await apply_entity_event(stream_event().model_copy(update={"tenant_id": None}), store, sink)
    assert sink.records == []


async def test_handler_records_changed_tenant_fields_once() -> None:
    store, sink = InMemoryCountStore(), RecordingSink()
    stream = uuid.uuid4()
    created = stream_event(entity_id=stream, version=1)
    await apply_entity_event(created, store, sink)
    await apply_entity_event(created, store, sink)  # a redelivery
    await apply_entity_event(
        stream_event(status="online", entity_id=stream, version=2), store, sink
    )
    assert sink.records == [
        (
            str(TENANT),
            {
                "streams_total": 1,
                "streams_status:pending": 1,
                "streams_kind:rtsp": 1,
                "streams_resolution:unknown": 1,
            },
        ),
        (str(TENANT), {"streams_status:pending": 0, "streams_status:online": 1}),
    ]
    assert store.tenants[TENANT]["streams_status:online"] == 1
    assert "streams_status:pending" not in store.tenants[TENANT]
