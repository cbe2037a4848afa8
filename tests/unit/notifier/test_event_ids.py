"""SSE event ids: each room's position, written and read back."""

from __future__ import annotations

import uuid

import pytest
from lookout_notifier.domain.event_ids import BadEventId, encode_event_id, parse_event_id
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import Room

TENANT = uuid.uuid4()


def test_event_ids_round_trip_and_refuse_garbage() -> None:
    a, b = Room("stream", uuid.uuid4()), Room("tenant", TENANT)
    text = encode_event_id({str(a): Position("e1", 12), str(b): Position(None, 40)})
    assert text == f"{a}=e1:12,{b}=40"
    assert parse_event_id(text, 16) == {a: Position("e1", 12), b: Position(None, 40)}
    assert parse_event_id(f"{a}=12", 16) == {a: Position(None, 12)}  # an id from before epochs
    for bad in ("stream:x=1", f"{a}=-1", f"{a}", f"{a}=1,{b}=2", f"{a}=e-1:2", f"{a}=e1:x"):
        with pytest.raises(BadEventId):
            parse_event_id(bad, 1 if bad.count(",") else 16)
