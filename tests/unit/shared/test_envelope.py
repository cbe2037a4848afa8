"""Envelope and contracts: what consumers accept and refuse."""

from __future__ import annotations

import json
import uuid

import pytest
from lookout_shared.contracts import (
    PROBE_BATCH,
    CaptureSnapshot,
    ProbeStream,
    SnapshotJobState,
    StreamState,
)
from lookout_shared.envelope import InvalidMessage, make_envelope, parse_message


def test_round_trip_keeps_every_field() -> None:
    stream = uuid.uuid4()
    env = make_envelope(
        "stream.updated",
        StreamState(name="a", kind="rtsp", status="online", enabled=True, height=1080),
        producer="t",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=3,
    )
    assert parse_message(env.to_bytes()) == env
    assert isinstance(env.payload(), StreamState)


def test_payload_must_match_the_type() -> None:
    with pytest.raises(TypeError):
        make_envelope(
            "snapshot.capture",
            SnapshotJobState(stream_id=uuid.uuid4(), status="queued"),
            producer="t",
            tenant_id=None,
            entity_id=uuid.uuid4(),
            entity_version=1,
        )


def base() -> dict[str, object]:
    job = uuid.uuid4()
    env = make_envelope(
        "snapshot.capture",
        CaptureSnapshot(job_id=job, stream_id=uuid.uuid4()),
        producer="t",
        tenant_id=uuid.uuid4(),
        entity_id=job,
        entity_version=1,
    )
    return env.model_dump(mode="json")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "nope.nope"}, "unknown message type 'nope.nope'"),
        ({"schema_version": 99}, "schema_version 99 is newer"),
        ({"data": {"job_id": "x"}}, "invalid snapshot.capture data"),
        ({"entity_version": -1}, "invalid envelope: entity_version"),
        ({"surprise": 1}, "invalid envelope: surprise"),
    ],
)
def test_invalid_messages_name_their_reason(change: dict[str, object], reason: str) -> None:
    body = json.dumps({**base(), **change}).encode()
    with pytest.raises(InvalidMessage, match=reason.replace("(", r"\(")):
        parse_message(body)


def test_garbage_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="invalid envelope"):
        parse_message(b"\xff\x00 not json")


def test_a_received_payload_is_validated_once_on_receipt_and_kept() -> None:
    stream = uuid.uuid4()
    sent = make_envelope(
        "stream.updated",
        StreamState(name="a", kind="rtsp", status="online", enabled=True, tags=["door"]),
        producer="t",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=3,
    )
    received = parse_message(sent.to_bytes())
    # payload() hands out the object parse_message validated, not a validation of the
    # data again: a later change to the raw data does not reach it.
    received.data["name"] = "changed"
    first = received.payload()
    assert isinstance(first, StreamState) and first.name == "a" and first.tags == ["door"]
    assert received.payload() is first
    # The kept payload is no field: equality and dumps see the fields alone.
    received.data["name"] = "a"
    assert received == sent and sent == received
    assert received.to_bytes() == sent.to_bytes()
    # An envelope built here validates its payload on the first payload() and keeps it.
    assert sent.payload() is sent.payload()


def probe_body(data: dict[str, object]) -> bytes:
    stream = uuid.uuid4()
    env = make_envelope(
        "stream.probe",
        ProbeStream(stream_ids=[stream]),
        producer="t",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )
    return json.dumps({**env.model_dump(mode="json"), "data": data}).encode()


def test_a_probe_command_of_the_old_shape_still_in_a_queue_is_accepted_as_one_stream() -> None:
    stream = uuid.uuid4()
    command = parse_message(probe_body({"stream_id": str(stream)})).payload()
    assert command == ProbeStream(stream_ids=[stream])


@pytest.mark.parametrize(
    ("count", "reason"),
    [(0, "at least 1 item"), (PROBE_BATCH + 1, f"at most {PROBE_BATCH} items")],
)
def test_a_probe_command_carries_one_to_probe_batch_streams(count: int, reason: str) -> None:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with pytest.raises(InvalidMessage, match=f"invalid stream.probe data: stream_ids: .*{reason}"):
        parse_message(probe_body({"stream_ids": ids}))
    full = [uuid.uuid4() for _ in range(PROBE_BATCH)]
    command = parse_message(probe_body({"stream_ids": [str(s) for s in full]})).payload()
    assert command == ProbeStream(stream_ids=full)
