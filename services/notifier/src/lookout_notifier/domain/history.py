"""Replay rules over a room's bounded history, and the room epochs that make them safe.

A room's frames are numbered ``seq`` 1, 2, 3... within an *epoch*: a random id created
with the room's numbering in Redis and gone with it. When Redis loses a room's numbering
(flushed, evicted, or restored from an older snapshot), the next event starts a new epoch
instead of reusing seqs clients already hold; subscribers then get a ``reset`` frame and
a ``since`` of the old epoch answers ``recovered: false``.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Where a room's numbering stands (or where a frame was numbered): seq within epoch.
    ``epoch`` is None for a room that has had no event yet."""

    epoch: str | None
    seq: int


@dataclass(frozen=True)
class StoredFrame:
    seq: int
    tenant_id: uuid.UUID | None
    text: str


@dataclass(frozen=True)
class Replay:
    current: Position  # the room's epoch and seq when the history was read
    frames: list[StoredFrame]  # the frames after ``since``, oldest first
    recovered: bool  # False: the history no longer covers since+1, the client must refetch


def replay_from(
    current: Position, history: Sequence[StoredFrame], since: int, epoch: str | None = None
) -> Replay:
    """The frames a client that saw up to ``since`` (of ``epoch``, when it says) missed, if
    the history still has them all."""
    if since > current.seq or (epoch is not None and epoch != current.epoch):
        # The client's seqs are of a numbering this room no longer has (lost, expired).
        return Replay(current, [], recovered=False)
    missed = [f for f in history if f.seq > since]
    if since == current.seq:
        return Replay(current, [], recovered=True)
    complete = bool(missed) and missed[0].seq == since + 1 and missed[-1].seq == current.seq
    return Replay(current, missed if complete else [], recovered=complete)


class KnownPositions:
    """The highest position this instance has seen per room (a bounded LRU): what lets it
    notice that Redis went back, and continue the numbering above it."""

    def __init__(self, max_rooms: int) -> None:
        self._max = max_rooms
        self._rooms: OrderedDict[str, Position] = OrderedDict()

    def get(self, room: str) -> Position | None:
        return self._rooms.get(room)

    def saw(self, room: str, position: Position) -> None:
        if position.epoch is None:
            return
        known = self._rooms.pop(room, None)
        if known is not None and known.epoch == position.epoch and known.seq > position.seq:
            position = known
        self._rooms[room] = position
        if len(self._rooms) > self._max:
            self._rooms.popitem(last=False)
