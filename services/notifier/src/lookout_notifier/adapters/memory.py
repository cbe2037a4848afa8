"""In-memory twin of the room history, for unit tests and single-process experiments."""

from __future__ import annotations

import uuid
from collections import defaultdict, deque
from collections.abc import Sequence

from lookout_notifier.domain.history import (
    KnownPositions,
    Position,
    Replay,
    StoredFrame,
    replay_from,
)
from lookout_notifier.domain.rooms import GONE, Owner, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.ports import Record


class MemoryRoomHistory:
    """``instance_of`` gives another instance's view of the same history (its own known
    positions, as each notifier process has)."""

    def __init__(
        self, history_size: int = 500, instance_of: MemoryRoomHistory | None = None
    ) -> None:
        self.seqs: dict[Room, int] = defaultdict(int)
        self.epochs: dict[Room, str] = {}
        self.frames: dict[Room, deque[StoredFrame]] = defaultdict(
            lambda: deque(maxlen=history_size)
        )
        self.owners: dict[uuid.UUID, Owner] = {}
        self._seen: dict[tuple[uuid.UUID, Room], Position] = {}
        if instance_of is not None:
            self.seqs, self.epochs, self.frames = (
                instance_of.seqs,
                instance_of.epochs,
                instance_of.frames,
            )
            self.owners, self._seen = instance_of.owners, instance_of._seen
        self.known = KnownPositions(1000)

    def lose(self) -> None:
        """Forget every room's numbering and history, as a flushed Redis would: the next
        event of a room starts a new epoch at 1 (the Redis adapter would continue above
        the highest seq its instance saw)."""
        self.seqs.clear()
        self.epochs.clear()
        self.frames.clear()
        self._seen.clear()

    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[Position]:
        positions = []
        for rec in records:
            key = (event_id, rec.room)
            fresh = key not in self._seen
            if fresh:
                epoch = self.epochs.setdefault(rec.room, uuid.uuid4().hex[:12])
                self.seqs[rec.room] += 1
                seq = self.seqs[rec.room]
                self._seen[key] = Position(epoch, seq)
                text = rec.frame.text(seq, epoch)
                self.frames[rec.room].append(StoredFrame(seq, rec.tenant_id, text))
            positions.append(self._seen[key])
            self.known.numbered(str(rec.room), self._seen[key], fresh)
        for fact in owners:
            known = self.owners.get(fact.entity_id)
            if fact.action == "forget":
                self.owners[fact.entity_id] = GONE
            elif (fact.action == "keep" and known != GONE) or known is None:
                self.owners[fact.entity_id] = fact.tenant_id
        return positions

    def predict(self, room: Room) -> Position | None:
        return self.known.predict(str(room))

    async def current(self, room: Room) -> Position:
        position = Position(self.epochs.get(room), self.seqs[room])
        self.known.saw(str(room), position)
        return position

    async def replay(self, room: Room, since: int, epoch: str | None = None) -> Replay:
        return replay_from(await self.current(room), list(self.frames[room]), since, epoch)

    async def owner_of(self, entity_id: uuid.UUID) -> Owner:
        return self.owners.get(entity_id)

    async def ping(self) -> object:
        return True


class MemoryConnectionSlots:
    """In-memory twin of the shared per-user connection slots (no leases: one process)."""

    def __init__(self) -> None:
        self.held: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)

    async def acquire(self, user_id: uuid.UUID, conn_id: uuid.UUID, limit: int) -> bool:
        if len(self.held[user_id]) >= limit:
            return False
        self.held[user_id].add(conn_id)
        return True

    async def release(self, user_id: uuid.UUID, conn_id: uuid.UUID) -> None:
        self.held[user_id].discard(conn_id)

    async def renew(self, held: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        return None
