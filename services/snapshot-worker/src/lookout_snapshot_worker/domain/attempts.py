"""Which stream, and which attempt at it, the current capture or probe serves.

The handler names it around each attempt; the ffmpeg adapter reads it for its span, so the
ports keep their plain ``capture(url)`` / ``probe(url)`` signatures.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    stream_id: uuid.UUID
    number: int  # 1 for the first try


_current: ContextVar[Attempt | None] = ContextVar("lookout_media_attempt", default=None)


def current_attempt() -> Attempt | None:
    return _current.get()


@contextlib.contextmanager
def media_attempt(stream_id: uuid.UUID, number: int) -> Iterator[None]:
    token = _current.set(Attempt(stream_id, number))
    try:
        yield
    finally:
        _current.reset(token)
