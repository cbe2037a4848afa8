"""The latest frame of a hot stream, as the worker holding the stream publishes it and the
api reads it: one Redis hash per stream, ``<prefix>hot:frame:<stream id>``, with

- ``jpeg``: the frame at the source's size, as a JPEG (at most ``MAX_FRAME_BYTES``),
- ``captured_at``: when it was decoded (Unix seconds, a float as text),
- ``width``, ``height``: its size in pixels,
- ``holder``: the id of the worker holding the stream (for operators),

written in one ``HSET`` with a ``PEXPIRE`` of the holder's frame TTL, so a frame of a stream
nobody holds any more disappears by itself. Services never call each other: frames cross
through Redis, commands and events through RabbitMQ.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from lookout_shared.redis import Keys

MAX_FRAME_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class HotFrame:
    jpeg: bytes
    captured_at: float
    width: int
    height: int
    holder: str


FRAME_KEYS = "hot:frame:"  # what every frame key starts with, after the prefix


def frame_key(keys: Keys, stream_id: uuid.UUID) -> str:
    return f"{keys.prefix}{FRAME_KEYS}{stream_id}"


def to_fields(frame: HotFrame) -> dict[str, bytes | str]:
    if len(frame.jpeg) > MAX_FRAME_BYTES:
        raise ValueError(f"a hot frame is at most {MAX_FRAME_BYTES} bytes")
    return {
        "jpeg": frame.jpeg,
        "captured_at": repr(frame.captured_at),
        "width": str(frame.width),
        "height": str(frame.height),
        "holder": frame.holder,
    }


def from_fields(raw: Mapping[bytes, bytes]) -> HotFrame | None:
    """The frame in an ``HGETALL`` answer, or None when there is none (or it is malformed)."""
    try:
        return HotFrame(
            jpeg=raw[b"jpeg"],
            captured_at=float(raw[b"captured_at"]),
            width=int(raw[b"width"]),
            height=int(raw[b"height"]),
            holder=raw[b"holder"].decode(),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
