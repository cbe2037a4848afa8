from __future__ import annotations

import uuid

import pytest
from lookout_shared.hot_frames import MAX_FRAME_BYTES, HotFrame, frame_key, from_fields, to_fields
from lookout_shared.redis import Keys


def test_a_frame_survives_the_round_trip_through_redis_fields() -> None:
    frame = HotFrame(b"\xff\xd8jpeg", 1764266400.125, 1280, 720, "worker-1")
    raw = {
        k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in to_fields(frame).items()
    }
    assert from_fields(raw) == frame


def test_missing_or_malformed_fields_are_no_frame() -> None:
    assert from_fields({}) is None
    assert (
        from_fields(
            {
                b"jpeg": b"x",
                b"captured_at": b"soon",
                b"width": b"1",
                b"height": b"1",
                b"holder": b"w",
            }
        )
        is None
    )


def test_a_frame_over_the_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        to_fields(HotFrame(b"x" * (MAX_FRAME_BYTES + 1), 0.0, 1, 1, "w"))


def test_the_key_is_per_stream_under_the_prefix() -> None:
    stream = uuid.uuid4()
    assert frame_key(Keys("lookout:"), stream) == f"lookout:hot:frame:{stream}"
