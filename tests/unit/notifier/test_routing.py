"""Which rooms each event reaches, what frame it becomes, and which owners it reveals."""

from __future__ import annotations

import json
import uuid

from lookout_notifier.domain.frames import event_body, event_frame
from lookout_notifier.domain.rooms import Room
from lookout_notifier.domain.routing import Delivery, OwnerFact, owner_facts, rooms_for
from lookout_shared.contracts import (
    CountsChanged,
    Payload,
    SnapshotCreated,
    SnapshotJobState,
    StreamDeleted,
    StreamState,
)
from lookout_shared.envelope import Envelope, make_envelope

TENANT = uuid.uuid4()


def envelope(
    kind: str, payload: Payload, entity: uuid.UUID, tenant: uuid.UUID | None = TENANT
) -> Envelope:
    return make_envelope(
        kind,
        payload,
        producer="tests",
        tenant_id=tenant,
        entity_id=entity,
        entity_version=1,
    )


def test_stream_events_go_to_the_stream_and_its_tenant() -> None:
    stream = uuid.uuid4()
    for event, action in (
        (
            envelope(
                "stream.created",
                StreamState(name="a", kind="rtsp", status="pending", enabled=True),
                stream,
            ),
            "keep",
        ),
        (envelope("stream.deleted", StreamDeleted(), stream), "forget"),
    ):
        assert rooms_for(event) == [
            Delivery(Room("stream", stream), TENANT),
            Delivery(Room("tenant", TENANT), TENANT),
        ]
        assert owner_facts(event) == [OwnerFact(stream, TENANT, action)]  # type: ignore[arg-type]


def test_job_events_go_to_stream_job_and_tenant() -> None:
    stream, job = uuid.uuid4(), uuid.uuid4()
    event = envelope(
        "snapshot_job.succeeded", SnapshotJobState(stream_id=stream, status="succeeded"), job
    )
    assert [d.room for d in rooms_for(event)] == [
        Room("stream", stream),
        Room("jobs", job),
        Room("tenant", TENANT),
    ]
    assert owner_facts(event) == [OwnerFact(stream, TENANT, "hint"), OwnerFact(job, TENANT, "hint")]


def test_snapshot_events_go_to_stream_and_tenant() -> None:
    stream, snap = uuid.uuid4(), uuid.uuid4()
    payload = SnapshotCreated(
        stream_id=stream, job_id=uuid.uuid4(), content_type="image/jpeg", size_bytes=3
    )
    event = envelope("snapshot.created", payload, snap)
    assert [d.room for d in rooms_for(event)] == [Room("stream", stream), Room("tenant", TENANT)]
    assert owner_facts(event) == [OwnerFact(stream, TENANT, "hint")]


def test_counts_go_to_the_scope_tenant_only() -> None:
    event = envelope(
        "counts.changed", CountsChanged(scope=str(TENANT), changes={"streams": 1}), TENANT, None
    )
    assert rooms_for(event) == [Delivery(Room("tenant", TENANT), TENANT)]
    platform = envelope(
        "counts.changed", CountsChanged(scope="platform", changes={}), uuid.uuid4(), None
    )
    assert rooms_for(platform) == []
    contradictory = envelope(
        "counts.changed", CountsChanged(scope=str(uuid.uuid4()), changes={}), TENANT, TENANT
    )
    assert rooms_for(contradictory) == []


def test_event_without_tenant_names_no_owner_and_no_tenant_room() -> None:
    stream = uuid.uuid4()
    event = envelope("stream.deleted", StreamDeleted(), stream, tenant=None)
    assert rooms_for(event) == [Delivery(Room("stream", stream), None)]
    assert owner_facts(event) == []


def test_frame_carries_room_seq_type_entity_and_data() -> None:
    stream, job = uuid.uuid4(), uuid.uuid4()
    event = envelope(
        "snapshot_job.failed",
        SnapshotJobState(stream_id=stream, status="failed", error='a "quoted" error'),
        job,
    )
    text = event_frame(Room("stream", stream), event_body(event)).text(7, "e1")
    assert json.loads(text) == {
        "room": f"stream:{stream}",
        "seq": 7,
        "epoch": "e1",
        "type": "snapshot_job.failed",
        "entity_id": str(job),
        "data": event.data,
    }
