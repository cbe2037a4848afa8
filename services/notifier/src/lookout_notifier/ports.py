"""What the notifier needs from the outside world; Redis implements it, tests use twins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lookout_notifier.domain.frames import EventFrame
from lookout_notifier.domain.history import Position, Replay
from lookout_notifier.domain.hub import Hub
from lookout_notifier.domain.outgoing import Outgoing
from lookout_notifier.domain.owner_watch import OwnerWatch
from lookout_notifier.domain.rooms import Owner, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.domain.webhooks import Hook, Outcome, Pending


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

    def predict(self, room: Room) -> Position | None:
        """The position the room's next event will be given, when this instance can tell
        without asking (domain.history.KnownPositions.predict); None otherwise."""
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


class Transport(Protocol):
    """Where a connection's frames go; no method waits."""

    def unsent(self) -> tuple[int, int]:
        """Live frames handed over but not yet taken by the peer's socket (a replay's are
        not counted: it is bounded by the history size), and the bytes not yet taken
        (WebSocket: all the transport holds; SSE: the queued live frames)."""
        ...

    def write(self, frame: Outgoing, live: bool) -> None: ...

    def close(self, code: int, reason: str) -> None:
        """Send what was written, then close with ``code`` (the peer gets a bounded time to
        take it)."""
        ...


@dataclass
class Deps:
    """Everything a handler is given: this instance's rooms, the shared history, and the
    subscriptions waiting to learn who owns a stream or job."""

    hub: Hub
    history: RoomHistory
    owners: OwnerWatch = field(default_factory=OwnerWatch)
    # How long a subscription to a stream or job nobody has named yet waits for the event
    # that names it before it is refused.
    owner_wait_seconds: float = 0.0


class WebhookStore(Protocol):
    """The tenants' hooks and the deliveries to replay (the api owns the schema)."""

    async def hooks_for(self, tenant_id: uuid.UUID, event_type: str) -> list[Hook]: ...

    async def record_failure(
        self, hook: Hook, event_id: uuid.UUID, event_type: str, body: str, attempts: int, error: str
    ) -> None: ...

    async def claim(self, limit: int, stale_seconds: float) -> list[Pending]:
        """Delivery rows to send (replays, test-fires), and 'sending' ones left stale."""
        ...

    async def settle(self, delivery_id: uuid.UUID, attempts: int, error: str | None) -> None: ...


class WebhookSender(Protocol):
    async def deliver(
        self, url: str, secret: str, event_id: uuid.UUID, webhook_id: uuid.UUID, body: str
    ) -> Outcome:
        """Send one signed delivery, with retries; how many attempts and the last error."""
        ...
