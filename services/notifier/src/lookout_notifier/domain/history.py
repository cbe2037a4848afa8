"""Replay rules over a room's bounded history, and the room epochs that make them safe.

A room's frames are numbered ``seq`` 1, 2, 3... within an *epoch*: a random id created
with the room's numbering in Redis and gone with it. When Redis loses a room's numbering
(flushed, evicted, or restored from an older snapshot), the next event starts a new epoch
instead of reusing seqs clients already hold; subscribers then get a ``reset`` frame and
a ``since`` of the old epoch answers ``recovered: false``.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# How long an instance predicts nothing after meeting a numbering another instance made.
SHARED_QUIET_SECONDS = 60.0


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
    notice that Redis went back, and continue the numbering above it.

    It also predicts a room's next position, so an event's frames can go out before Redis
    has numbered it (handlers.events): the next seq follows the last one when this
    instance numbered the room's last event itself, i.e. every event of the room passes
    through it in the order it numbers them. That holds while it is the only instance
    numbering: once a numbering comes back that another instance made first (or an event
    is met again), or a numbering fails, nothing is predicted for ``SHARED_QUIET_SECONDS``.
    """

    def __init__(self, max_rooms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_rooms
        # room → (position, whether it came from this instance numbering the room's event)
        self._rooms: OrderedDict[str, tuple[Position, bool]] = OrderedDict()
        self._clock = clock
        self._paused_at: float | None = None

    def get(self, room: str) -> Position | None:
        entry = self._rooms.get(room)
        return entry[0] if entry is not None else None

    def saw(self, room: str, position: Position) -> None:
        """A position read from the shared numbering (a subscription, a replay)."""
        self._put(room, position, own=False)

    def numbered(self, room: str, position: Position, fresh: bool) -> None:
        """The position an event was given in ``room``; ``fresh`` when this instance gave
        it (rather than finding the event numbered already)."""
        if not fresh:
            self.pause()
        if position.seq:  # seq 0: numbered in an epoch the room has left, no position
            self._put(room, position, own=True)

    def pause(self) -> None:
        """Predict nothing for a while: the numbering is not this instance's alone, or failed."""
        self._paused_at = self._clock()

    def predict(self, room: str) -> Position | None:
        """The position the room's next event will get, when this instance can tell."""
        if self._paused_at is not None and self._clock() - self._paused_at < SHARED_QUIET_SECONDS:
            return None
        entry = self._rooms.get(room)
        if entry is None or not entry[1] or entry[0].epoch is None:
            return None
        return Position(entry[0].epoch, entry[0].seq + 1)

    def _put(self, room: str, position: Position, own: bool) -> None:
        if position.epoch is None:
            return
        known = self._rooms.pop(room, None)
        entry = (position, own)
        if known is not None and known[0].epoch == position.epoch:
            if known[0].seq > position.seq:
                entry = known  # behind what was seen already
            elif known[0].seq == position.seq:
                entry = (position, own or known[1])
        self._rooms[room] = entry
        if len(self._rooms) > self._max:
            self._rooms.popitem(last=False)
