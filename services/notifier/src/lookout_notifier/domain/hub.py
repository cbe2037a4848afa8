"""This instance's rooms: room name → the local connections subscribed to it."""

from __future__ import annotations

import uuid
from collections import defaultdict

from lookout_shared import telemetry
from opentelemetry.trace import SpanKind

from lookout_notifier import metrics
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.outgoing import Outgoing

_tracer = telemetry.tracer(__name__)


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[str, set[Connection]] = defaultdict(set)
        self.connections: set[Connection] = set()

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)
        metrics.CONNECTIONS.set(len(self.connections))

    def disconnect(self, conn: Connection) -> None:
        for room in conn.rooms:
            self.leave(room, conn)
        self.connections.discard(conn)
        metrics.CONNECTIONS.set(len(self.connections))

    def join(self, room: str, conn: Connection) -> None:
        conn.begin_subscription(room)
        self._rooms[room].add(conn)

    def leave(self, room: str, conn: Connection) -> None:
        conn.drop_subscription(room)
        members = self._rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._rooms[room]

    def has_members(self, room: str) -> bool:
        return room in self._rooms

    def fan_out(
        self, room: str, at: Position, tenant_id: uuid.UUID | None, text: str
    ) -> list[Connection]:
        """Offer a frame to the room's local connections; those that took it. A room with
        local members gets a span (a child of the consumed message's)."""
        members = self._rooms.get(room)
        if not members:
            return []
        template = f"{room.split(':', 1)[0]}:{{id}}"  # span names stay low-cardinality
        with _tracer.start_as_current_span(
            f"send {template}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "websocket",
                "messaging.operation.type": "send",
                "messaging.destination.name": room,
                "messaging.destination.template": template,
                "lookout.room.epoch": at.epoch or "",
                "lookout.room.seq": at.seq,
                "lookout.room.members": len(members),
            },
        ) as span:
            frame = Outgoing(text)  # encoded once for all the room's connections
            # A copy: a connection closing on overflow must not resize the set mid-loop.
            received = [
                conn
                for conn in list(members)
                if conn.deliver(room, at.epoch, at.seq, tenant_id, frame)
            ]
            span.set_attribute("lookout.room.recipients", len(received))
        metrics.FRAMES_SENT.inc(len(received))
        return received
