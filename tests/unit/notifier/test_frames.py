"""Frames: the client's, parsed or refused with stable codes, and the position an event
frame carries."""

from __future__ import annotations

import uuid

import pytest
from lookout_notifier.domain import frames
from lookout_notifier.domain.frames import event_body, event_frame, frame_position
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import Room, parse_room
from lookout_shared.contracts import StreamState
from lookout_shared.envelope import make_envelope

TENANT = uuid.uuid4()


def test_frame_position_reads_room_seq_and_epoch_without_parsing() -> None:
    room = Room("stream", uuid.uuid4())
    state = StreamState(name="cam", kind="rtsp", status="pending", enabled=True)
    envelope = make_envelope(
        "stream.created",
        state,
        producer="tests",
        tenant_id=TENANT,
        entity_id=room.id,
        entity_version=1,
    )
    text = event_frame(room, event_body(envelope)).text(42, "e1")
    assert frame_position(text) == (str(room), Position("e1", 42))
    assert frame_position('{"op":"pong"}') is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", frames.BAD_FRAME),
        ("[1, 2]", frames.BAD_FRAME),
        ('{"room": "x"}', frames.BAD_FRAME),
        ('{"op": "shout"}', frames.UNKNOWN_OP),
        ('{"op": "subscribe", "room": "nope:1"}', frames.BAD_ROOM),
        (
            '{"op": "subscribe", "room": "stream:' + str(TENANT) + '", "since": -1}',
            frames.BAD_FRAME,
        ),
        (
            '{"op": "subscribe", "room": "stream:' + str(TENANT) + '", "since": true}',
            frames.BAD_FRAME,
        ),
    ],
)
def test_bad_client_frames_get_stable_codes(text: str, code: str) -> None:
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_client_frame(text)
    assert caught.value.code == code


def test_good_client_frames() -> None:
    room = f"stream:{TENANT}"
    assert frames.parse_client_frame('{"op":"ping"}') == frames.Ping()
    assert frames.parse_client_frame(
        f'{{"op":"subscribe","room":"{room}","since":3}}'
    ) == frames.Subscribe(parse_room(room), 3)
    assert frames.parse_client_frame(
        f'{{"op":"unsubscribe","room":"{room}"}}'
    ) == frames.Unsubscribe(parse_room(room))
