"""What the notifier needs from the outside world; Redis implements it, tests use twins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lookout_notifier.domain.frames import EventFrame
from lookout_notifier.domain.history import Position, Replay
from lookout_notifier.domain.rooms import Owner, Room
from lookout_notifier.domain.routing import OwnerFact


@dataclass(frozen=True)
class Record:
    """One frame to number and keep: the event's frame in one room."""

    room: Room
    tenant_id: uuid.UUID | None
    frame: EventFrame


class RoomHistory(Protocol):
    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[Position]:
        """Assign each record the next seq of its room (in the room's epoch, a new one when
        the numbering was lost) and append it to the room's history; apply ``owners`` (see
        OwnerFact). Idempotent per (event, room): every notifier instance sees every event
        and all must agree on its position. Seq 0: the event was numbered in an epoch the
        room has left, it is not delivered again."""
        ...

    async def current(self, room: Room) -> Position: ...

    async def replay(self, room: Room, since: int, epoch: str | None = None) -> Replay:
        """The frames after ``since``; recovered=false when they are not all kept, or when
        ``epoch`` (the client's) is not the room's."""
        ...

    async def owner_of(self, entity_id: uuid.UUID) -> Owner:
        """The tenant an event said owns this stream or job, GONE once the stream was
        deleted, None if no event about it has been seen."""
        ...

    async def ping(self) -> object: ...


class ConnectionSlots(Protocol):
    """Per-user connection slots shared by every instance. A slot is a lease that its
    instance renews; a crashed instance's slots lapse on their own."""

    async def acquire(self, user_id: uuid.UUID, conn_id: uuid.UUID, limit: int) -> bool: ...

    async def release(self, user_id: uuid.UUID, conn_id: uuid.UUID) -> None: ...

    async def renew(self, held: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Extend the leases of these (user, connection) slots."""
        ...
