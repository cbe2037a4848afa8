"""Replay rules over a room's bounded history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredFrame:
    seq: int
    tenant_id: uuid.UUID | None
    text: str


@dataclass(frozen=True)
class Replay:
    seq: int  # the room's current seq when the history was read
    frames: list[StoredFrame]  # the frames after ``since``, oldest first
    recovered: bool  # False: the history no longer covers since+1, the client must refetch


def replay_from(current: int, history: Sequence[StoredFrame], since: int) -> Replay:
    """The frames a client that saw up to ``since`` missed, if the history still has them all."""
    if since > current:
        # The client knows seqs this room never had (its counter expired and restarted).
        return Replay(current, [], recovered=False)
    missed = [f for f in history if f.seq > since]
    if since == current:
        return Replay(current, [], recovered=True)
    complete = bool(missed) and missed[0].seq == since + 1 and missed[-1].seq == current
    return Replay(current, missed if complete else [], recovered=complete)
