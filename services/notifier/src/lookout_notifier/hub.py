"""This instance's rooms: room name → the local connections subscribed to it."""

from __future__ import annotations

import uuid
from collections import defaultdict

from lookout_notifier import metrics
from lookout_notifier.connection import Connection


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

    def fan_out(self, room: str, seq: int, tenant_id: uuid.UUID | None, text: str) -> None:
        # A copy: a connection closing on overflow must not resize the set mid-loop.
        for conn in list(self._rooms.get(room, ())):
            conn.deliver(room, seq, tenant_id, text)
