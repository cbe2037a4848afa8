"""The published JSON Schema of the notifier's frames (docs/schemas) is current, and the
frames the notifier really builds validate against it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lookout_notifier.domain import frame_schemas, frames
from lookout_notifier.domain.rooms import parse_room
from lookout_shared import contracts
from lookout_shared.envelope import make_envelope

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = ROOT / "docs" / "schemas" / "notifier-frames.schema.json"
STREAM = uuid.uuid4()
ROOM = f"stream:{STREAM}"


def validator(side: str) -> jsonschema.Draft202012Validator:
    doc = json.loads(PUBLISHED.read_text())
    return jsonschema.Draft202012Validator({**doc, "oneOf": [{"$ref": f"#/$defs/{side}"}]})


def test_the_published_schema_is_what_lookout_notifier_schema_prints() -> None:
    assert json.loads(PUBLISHED.read_text()) == frame_schemas.document(), (
        "regenerate: lookout-notifier schema > docs/schemas/notifier-frames.schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(frame_schemas.document())


def event_frames() -> list[str]:
    samples: dict[str, contracts.Payload] = {
        "stream.created": contracts.StreamState(
            name="cam", kind="rtsp", status="online", enabled=True
        ),
        "stream.deleted": contracts.StreamDeleted(),
        "snapshot_job.failed": contracts.SnapshotJobState(
            stream_id=STREAM, status="failed", error="timeout"
        ),
        "snapshot.created": contracts.SnapshotCreated(
            stream_id=STREAM, job_id=uuid.uuid4(), content_type="image/jpeg", size_bytes=10
        ),
        "snapshot.deleted": contracts.SnapshotDeleted(stream_id=STREAM),
        "counts.changed": contracts.CountsChanged(scope="platform", changes={"streams": 1}),
    }
    return [
        frames.event_frame(
            parse_room(ROOM),
            frames.event_body(
                make_envelope(
                    kind,
                    payload,
                    producer="test",
                    tenant_id=uuid.uuid4(),
                    entity_id=STREAM,
                    entity_version=1,
                )
            ),
        ).text(7, "e1")
        for kind, payload in samples.items()
    ]


@pytest.mark.parametrize(
    "text",
    [
        frames.control("subscribed", room=ROOM, seq=3, epoch="e1", recovered=True),
        frames.control("unsubscribed", room=ROOM),
        frames.control("pong"),
        frames.control("authenticated", expires_at=1_900_000_000),
        frames.reset(ROOM, "e2", 4),
        frames.error(frames.FORBIDDEN_ROOM, frames.FORBIDDEN_DETAIL, ROOM),
        *event_frames(),
    ],
)
def test_server_frames_match_the_schema(text: str) -> None:
    validator("ServerFrame").validate(json.loads(text))


@pytest.mark.parametrize(
    "frame",
    [
        {"op": "subscribe", "room": ROOM, "since": 3, "epoch": "e1"},
        {"op": "unsubscribe", "room": ROOM},
        {"op": "ping"},
        {"op": "auth", "token": "t"},
    ],
)
def test_client_frames_the_notifier_accepts_match_the_schema(frame: dict[str, Any]) -> None:
    frames.parse_client_frame(json.dumps(frame))
    validator("ClientFrame").validate(frame)


def test_an_event_with_a_payload_of_another_type_does_not_match() -> None:
    text = event_frames()[0].replace('"type":"stream.created"', '"type":"snapshot.deleted"')
    with pytest.raises(jsonschema.ValidationError):
        validator("ServerFrame").validate(json.loads(text))
