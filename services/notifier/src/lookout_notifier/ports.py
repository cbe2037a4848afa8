"""What the notifier needs from the outside world; Redis implements it, tests use twins."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lookout_notifier.domain.frames import EventFrame
from lookout_notifier.domain.history import Replay
from lookout_notifier.domain.rooms import Room


@dataclass(frozen=True)
class Record:
    """One frame to number and keep: the event's frame in one room."""

    room: Room
    tenant_id: uuid.UUID | None
    frame: EventFrame


class RoomHistory(Protocol):
    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Mapping[uuid.UUID, uuid.UUID]
    ) -> list[int]:
        """Assign each record the next seq of its room and append it to the room's history;
        remember ``owners`` (entity id → tenant). Idempotent per (event, room): every
        notifier instance sees every event and all must agree on its seq."""
        ...

    async def current_seq(self, room: Room) -> int: ...

    async def replay(self, room: Room, since: int) -> Replay: ...

    async def owner_of(self, entity_id: uuid.UUID) -> uuid.UUID | None:
        """The tenant an event said owns this stream or job, if one has been seen."""
        ...

    async def ping(self) -> object: ...
